// Prints 1 when the OpenBLAS development files are installed (header + library), else 0.
// binding.gyp uses it to choose between cblas and the addon's own blocked GEMM.
const fs = require('node:fs');
if (process.env.STACKWISE_NO_BLAS === '1') { process.stdout.write('0'); process.exit(0); }
const headers = ['/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/aarch64-linux-gnu/cblas.h', '/usr/include/cblas.h', '/usr/include/openblas/cblas.h'];
const libDirs = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib', '/usr/lib64', '/usr/local/lib'];
const header = headers.some((h) => fs.existsSync(h));
const lib = libDirs.some((d) => fs.existsSync(`${d}/libopenblas.so`));
process.stdout.write(header && lib ? '1' : '0');
