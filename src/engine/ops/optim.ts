// Ops of the optim family (being written).
export {};
