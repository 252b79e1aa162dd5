// Ops of the layout family (being written).
export {};
