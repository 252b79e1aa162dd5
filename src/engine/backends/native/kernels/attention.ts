// Native kernels of the attention family (being written).
export {};
