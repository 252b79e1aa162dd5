// Ops of the attention family (being written).
export {};
