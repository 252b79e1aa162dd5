// Quantized storage family (being written).
export {};
