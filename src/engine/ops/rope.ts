// Ops of the rope family (being written).
export {};
