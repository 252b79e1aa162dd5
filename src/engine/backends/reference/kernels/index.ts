// Registers every reference kernel (import for side effects).
import './core.js';
import './reduce.js';
import './layout.js';
import './softmax.js';
import './optim.js';
import './norm.js';
import './rope.js';
import './embedding.js';
import './dropout.js';
import './attention.js';
import './quant.js';
import './linear-cross-entropy.js';
import './optim8.js';
