// Native kernels of the reduce family (being written).
export {};
