// Native kernels of the optim family (being written).
export {};
