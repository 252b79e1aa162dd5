// Ops of the softmax family (being written).
export {};
