/* The row kernels (_vecmath.h, _rows.h, and _formulas.h's relu step) on many inputs, every
 * length 0..69 and NaN / inf / -0.0 among them, in plain C: prints the build in use and an FNV-1a
 * hash of every result's bits. tools/check_row_kernels.sh compiles it once per code path and
 * instruction set and compares the hashes: they must all be equal. */
#include <stdio.h>
#include <stdint.h>
#include "_formulas.h"
#include "_rows.h"
static uint64_t h = 1469598103934665603ULL;
static void eat(const void* p, size_t n) { const unsigned char* c = p; for (size_t i = 0; i < n; i++) { h ^= c[i]; h *= 1099511628211ULL; } }
static uint64_t st = 88172645463325252ULL;
static double rnd(void) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return (double)(st >> 11) / 9007199254740992.0 * 2 - 1; }
#define N 300
int main(void) {
    static double xd[N * N], yd[N * N], Wd[N * N]; static float xf[N * N], yf[N * N], Wf[N * N];
    cprop_dense_init();
    for (int i = 0; i < N * N; i++) { xd[i] = rnd() * 800; xf[i] = (float)(rnd() * 120); Wd[i] = rnd(); Wf[i] = (float)rnd(); }
    xd[5] = NAN; xf[7] = NAN; xd[9] = INFINITY; xf[11] = -INFINITY; xd[13] = -0.0;
    for (int n = 0; n < 70; n++) {
        memcpy(yd, xd, sizeof yd); memcpy(yf, xf, sizeof yf);
        cprop_exp_row_d(yd + n, n * 37); cprop_exp_row_f(yf + n, n * 37); eat(yd, sizeof yd); eat(yf, sizeof yf);
        memcpy(yd, xd, sizeof yd); memcpy(yf, xf, sizeof yf);
        cprop_sigmoid_row_d(yd + n, n * 37); cprop_sigmoid_row_f(yf + n, n * 37); eat(yd, sizeof yd); eat(yf, sizeof yf);
        memcpy(yd, Wd, sizeof yd); memcpy(yf, Wf, sizeof yf);
        double l1 = cprop_softmax_row_d(yd, n + 1, 1), l2 = cprop_softmax_row_f(yf, n + 1, 1); eat(&l1, 8); eat(&l2, 8); eat(yd, 8 * (n + 1)); eat(yf, 4 * (n + 1));
        int ni = n % 13 + 1, no = n + 1;
        cprop_net_input_row_d(Wd, Wd + 1000, Wd + 5000, yd, ni, no); eat(yd, 8 * no);
        cprop_net_input_row_f(Wf, Wf + 1000, Wf + 5000, yf, ni, no); eat(yf, 4 * no);
        memcpy(yd, Wd, sizeof yd); memcpy(yf, Wf, sizeof yf);
        cprop_rank1_sgd_d(yd, Wd + 7, Wd + 900, ni, no, 0.1); cprop_rank1_sgd_f(yf, Wf + 7, Wf + 900, ni, no, 0.1f); eat(yd, 8 * ni * no); eat(yf, 4 * ni * no);
        cprop_rank1_add_d(yd, Wd + 7, Wd + 900, ni, no); cprop_rank1_add_f(yf, Wf + 7, Wf + 900, ni, no); eat(yd, 8 * ni * no); eat(yf, 4 * ni * no);
        cprop_back_sums_d(Wd, Wd + 2000, yd, no, ni); cprop_back_sums_f(Wf, Wf + 2000, yf, no, ni); eat(yd, 8 * no); eat(yf, 4 * no);
        memcpy(yd, xd + 20, sizeof(double) * 500); memcpy(yf, xf + 20, sizeof(float) * 500);
        double q1 = cprop_scale_d(yd, n * 7, n % 5 + 1), q2 = cprop_scale_f(yf, n * 7, n % 5 + 1); eat(yd, 8 * 500); eat(yf, 4 * 500); eat(&q1, 8); eat(&q2, 8);
        double m1 = cprop_absmax_d(xd + 20 - n % 16, n * 3), m2 = cprop_absmax_f(xf + 20 - n % 16, n * 3); eat(&m1, 8); eat(&m2, 8);
        memcpy(yd, Wd, sizeof(double) * 200); memcpy(yf, Wf, sizeof(float) * 200);
        cprop_times_derivative_d(yd, Wd + 3, n, CPROP_ACT_LEAKY_RELU, 0.01); cprop_times_derivative_f(yf, Wf + 3, n, CPROP_ACT_RELU, 0.01f); eat(yd, 8 * 200); eat(yf, 4 * 200);
        memcpy(yd, Wd, sizeof(double) * 200); memcpy(yf, Wf, sizeof(float) * 200);
        cprop_times_derivative_block_d(yd, Wd + 3, n * 2, CPROP_ACT_RELU, 0.01); cprop_times_derivative_block_f(yf, Wf + 3, n * 2, CPROP_ACT_LEAKY_RELU, 0.01f); eat(yd, 8 * 200); eat(yf, 4 * 200);
        memcpy(yd, xd, sizeof(double) * 1000); memcpy(yf, xf, sizeof(float) * 1000);
        cprop_bias_rows_d(yd, Wd + 5, ni, no, n & 1); cprop_bias_rows_f(yf, Wf + 5, ni, no, (n & 2) != 0); eat(yd, 8 * 1000); eat(yf, 4 * 1000);
        memcpy(yd + 2000, Wd, sizeof(double) * 100); memcpy(yf + 2000, Wf, sizeof(float) * 100);
        cprop_column_sums_d(yd, ni, no, yd + 2000, n & 1); cprop_column_sums_f(yf, ni, no, yf + 2000, (n & 2) != 0); eat(yd + 2000, 8 * 100); eat(yf + 2000, 4 * 100);
        int nn = n % CPROP_NARROW_MAX + 1;
        memcpy(yd + 2000, Wd, sizeof(double) * 100); memcpy(yf + 2000, Wf, sizeof(float) * 100);
        cprop_back_narrow_d(Wd, xd + 3, Wd + 500, yd, ni, no, nn, n & 1, 0.01, n & 4 ? yd + 2000 : NULL, n & 8); cprop_back_narrow_f(Wf, xf + 3, Wf + 500, yf, ni, no, nn, (n & 2) != 0, 0.01f, n & 4 ? NULL : yf + 2000, n & 16); eat(yd, 8 * ni * no); eat(yf, 4 * ni * no); eat(yd + 2000, 8 * 100); eat(yf + 2000, 4 * 100);
        memcpy(yd, xd, sizeof(double) * 1000); memcpy(yf, xf, sizeof(float) * 1000);
        double s1 = cprop_sum_parts_d(yd, n * 3, 250, n % 4 + 1, 1.0 / (n + 3), yd + (n % 4) * 250), s2 = cprop_sum_parts_f(yf, n * 3, 250, n % 4 + 1, 1.0f / (n + 3), yf + (n % 4) * 250); eat(&s1, 8); eat(&s2, 8); eat(yd, 8 * 1000); eat(yf, 4 * 1000);
    }
    printf("%s %016llx\n", cprop_dense_isa(), (unsigned long long)h);
    return 0;
}
