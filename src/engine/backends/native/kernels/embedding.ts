// Native kernels of the embedding family (being written).
export {};
