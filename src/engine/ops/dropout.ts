// Ops of the dropout family (being written).
export {};
