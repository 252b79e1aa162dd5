{
  "variables": { "has_blas": "<!(node scripts/detect-blas.cjs)" },
  "targets": [
    {
      "target_name": "stackwise_native",
      "sources": [
        "native/src/addon.cc",
        "native/src/storage.cc",
        "native/src/gemm.cc",
        "native/src/elementwise.cc",
        "native/src/reduce.cc",
        "native/src/softmax.cc",
        "native/src/norm.cc",
        "native/src/rope.cc",
        "native/src/embedding.cc",
        "native/src/dropout.cc",
        "native/src/attention.cc",
        "native/src/optim.cc",
        "native/src/layout.cc",
        "native/src/quant.cc",
        "native/src/linear_ce.cc"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags": ["-O3", "-march=native", "-fopenmp", "-fno-math-errno"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=native", "-fopenmp", "-fexceptions", "-fno-math-errno"],
      "ldflags": ["-fopenmp", "-Wl,-z,now"],
      "conditions": [
        ["has_blas==1", {
          "defines": ["STACKWISE_HAVE_CBLAS=1"],
          "libraries": ["-lopenblas"]
        }]
      ]
    }
  ]
}
