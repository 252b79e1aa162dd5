// Reference kernels of the rope family (being written).
export {};
