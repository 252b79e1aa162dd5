// Reference kernels of the softmax family (being written).
export {};
