// Reference kernels of the dropout family (being written).
export {};
