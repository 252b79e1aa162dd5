// Native kernels of the layout family (being written).
export {};
