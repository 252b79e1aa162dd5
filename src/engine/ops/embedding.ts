// Ops of the embedding family (being written).
export {};
