/* The population kernel's best vector build against its scalar build, in plain C, for a
 * machine or emulator without Python: tools/check_lanes_isa.sh compiles it natively and for
 * aarch64 (NEON, run under qemu-aarch64). Every case must print "same bits"; the exit status
 * is the number that do not. The lanes of a block start from the same parameters whatever the
 * block width, so lanes 0..7 of each build are compared. */
#include <stdio.h>
#include <stdint.h>
#include "_population.h"
static uint64_t st = 88172645463325252ULL;
static int refused;  /* lanes 0..7 whose step was refused, in the last run */
static double rnd(void) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return (double)(st >> 11) / 9007199254740992.0 * 2 - 1; }
/* Trains one block on build `isa` (5 epochs over 7 random rows; lane 3 with lr 1e4, so that
 * most cases refuse a step) and copies lanes 0..7 (parameters, losses, status) to out. */
static int run(int isa, int L, const ptrdiff_t* sizes, const int* act, int loss, int f32,
               unsigned char* out, size_t* outlen)
{
    /* the layout of _population.pxi's _population_fit: u_off[l + 1] is layer l's first unit */
    ptrdiff_t w_off[8], b_off[8], u_off[9], k = 0, nu = 0, l;
    u_off[0] = 0;
    for (l = 0; l < L; l++) {
        w_off[l] = k;
        k += sizes[l] * sizes[l + 1];
        b_off[l] = k;
        k += sizes[l + 1];
        u_off[l + 1] = nu;
        nu += sizes[l + 1];
    }
    cprop_pop_net net = {L, k, nu, sizes, w_off, b_off, u_off, act, loss, 1, 0.01};
    int B = f32 ? cprop_pop_block_f(isa) : cprop_pop_block_d(isa);
    ptrdiff_t NP = k, rows = 7, epochs = 5, NO = sizes[L];
    size_t es = f32 ? 4 : 8;
    char* P = calloc(NP * B, es); char* work = calloc(cprop_pop_work(NP, nu, NO, B), es);
    double* dwork = calloc(2 * B, 8); char* X = calloc(rows * sizes[0], es); char* T = calloc(rows * NO, es);
    char* lr = calloc(B, es); double* losses = calloc(B * epochs, 8); int* status = calloc(B, sizeof(int));
    st = 88172645463325252ULL;
    for (ptrdiff_t i = 0; i < rows * sizes[0]; i++) { double v = rnd() * 2; if (f32) ((float*)X)[i] = (float)v; else ((double*)X)[i] = v; }
    for (ptrdiff_t r = 0; r < rows; r++) for (ptrdiff_t o = 0; o < NO; o++) { double v = loss == 1 ? (o == r % NO) : (rnd() + 1) / 2; if (f32) ((float*)T)[r*NO+o] = (float)v; else ((double*)T)[r*NO+o] = v; }
    for (int q = 0; q < B; q++) for (ptrdiff_t p = 0; p < NP; p++) { double v = rnd(); ptrdiff_t i = p * B + q; if (f32) ((float*)P)[i] = (float)v; else ((double*)P)[i] = v; }
    for (int q = 0; q < B; q++) { double v = 0.05 + 0.3 * (q % 7) / 7.0; if (q == 3) v = 1e4; if (f32) ((float*)lr)[q] = (float)v; else ((double*)lr)[q] = v; }
    if (f32) cprop_pop_train_block_f(isa, &net, (float*)P, (float*)work, dwork, (float*)X, (float*)T, rows, epochs, (float*)lr, losses, status);
    else cprop_pop_train_block_d(isa, &net, (double*)P, (double*)work, dwork, (double*)X, (double*)T, rows, epochs, (double*)lr, losses, status);
    /* the first min(B, 8) lanes only: blocks differ by isa, lanes 0..7 have the same start */
    size_t n = 0;
    for (int q = 0; q < 8 && q < B; q++) { for (ptrdiff_t p = 0; p < NP; p++) { memcpy(out + n, P + (p * B + q) * es, es); n += es; }
        memcpy(out + n, losses + q * epochs, 8 * epochs); n += 8 * epochs; memcpy(out + n, status + q, sizeof(int)); n += sizeof(int); }
    *outlen = n;
    refused = 0;
    for (int q = 0; q < 8 && q < B; q++) refused += status[q] != 0;
    free(P); free(work); free(dwork); free(X); free(T); free(lr); free(losses); free(status);
    return B;
}
int main(void) {
    static unsigned char a[1 << 20], b[1 << 20]; size_t na, nb; int fails = 0;
    ptrdiff_t s1[] = {2, 3, 2}; int a1[] = {CPROP_ACT_SIGMOID, CPROP_ACT_SOFTMAX};
    ptrdiff_t s2[] = {3, 4, 3, 1}; int a2[] = {CPROP_ACT_TANH, CPROP_ACT_RELU, CPROP_ACT_SIGMOID};
    ptrdiff_t s3[] = {3, 5, 2}; int a3[] = {CPROP_ACT_LEAKY_RELU, CPROP_ACT_EXP};
    struct { int L; ptrdiff_t* s; int* a; int loss; } cases[] = {{2, s1, a1, 1}, {3, s2, a2, 0}, {3, s2, a2, 2}, {2, s3, a3, 3}, {2, s1, a1, 0}};
    cprop_lanes_init();
    printf("best isa: %s\n", cprop_lanes_isa_name(cprop_lanes_best));
    for (int c = 0; c < 5; c++) for (int f32 = 0; f32 < 2; f32++) {
        int Ba = run(CPROP_ISA_SCALAR, cases[c].L, cases[c].s, cases[c].a, cases[c].loss, f32, a, &na);
        int Bb = run(cprop_lanes_best, cases[c].L, cases[c].s, cases[c].a, cases[c].loss, f32, b, &nb);
        int same = na == nb && !memcmp(a, b, na);
        printf("case %d f32=%d B %d/%d, %d of lanes 0-7 refused a step: %s\n", c, f32, Ba, Bb,
               refused, same ? "same bits" : "DIFFERENT");
        fails += !same;
    }
    return fails;
}
