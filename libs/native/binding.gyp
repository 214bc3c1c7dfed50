{
  "targets": [
    {
      "target_name": "grove_native",
      "sources": [
        "src/c/addon.c",
        "src/c/matmul.c",
        "src/c/reduce.c",
        "src/c/norm.c",
        "src/c/attention.c",
        "src/c/loss.c",
        "src/c/rows.c"
      ],
      "cflags": ["-O3", "-std=c11", "-fno-math-errno", "-march=native"],
      "libraries": ["-lopenblas", "-lm"]
    }
  ]
}
