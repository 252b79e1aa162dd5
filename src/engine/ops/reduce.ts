// Ops of the reduce family (being written).
export {};
