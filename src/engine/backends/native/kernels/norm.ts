// Native kernels of the norm family (being written).
export {};
