/* The same OpenBLAS sgemm called from plain C: the yardstick for the addon's matmul overhead.
 * Prints one JSON line per size: {"bench":"sgemm-c","m":..,"n":..,"k":..,"gflops":..,"core":..}.
 * Build: cc -O2 sgemm_bench.c -lopenblas -o sgemm_bench */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

extern char* openblas_get_corename(void);

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  for (int i = 1; i + 2 < argc; i += 3) {
    int m = atoi(argv[i]), n = atoi(argv[i + 1]), k = atoi(argv[i + 2]);
    float* A = malloc(sizeof(float) * m * k);
    float* B = malloc(sizeof(float) * k * n);
    float* C = malloc(sizeof(float) * m * n);
    for (long j = 0; j < (long)m * k; j++) A[j] = (float)((j * 7919) % 1000) / 1000.f;
    for (long j = 0; j < (long)k * n; j++) B[j] = (float)((j * 104729) % 1000) / 1000.f;
    double flop = 2.0 * m * n * k;
    int reps = flop > 4e9 ? 5 : flop > 2e8 ? 15 : 60;
    double times[64];
    for (int r = 0; r < 2; r++) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.f, A, k, B, n, 0.f, C, n);
    for (int r = 0; r < reps; r++) {
      double t0 = now();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.f, A, k, B, n, 0.f, C, n);
      times[r] = now() - t0;
    }
    qsort(times, reps, sizeof(double), cmp);
    printf("{\"bench\":\"sgemm-c\",\"m\":%d,\"n\":%d,\"k\":%d,\"gflops\":%.1f,\"core\":\"%s\"}\n", m, n, k, flop / times[reps / 2] / 1e9, openblas_get_corename());
    free(A); free(B); free(C);
  }
  return 0;
}
