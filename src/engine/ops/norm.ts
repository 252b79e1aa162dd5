// Ops of the norm family (being written).
export {};
