/* Peer loops for bench/populations.py: many independent one-hidden-layer nets (NI-NH-NO, sigmoid
 * hidden), online SGD over the same rows in a fixed order, plain C.
 *
 * OUT_SOFTMAX=0: sigmoid outputs, loss sum_k 1/2 (t_k - y_k)^2 (delta = (y - t) y (1 - y));
 * OUT_SOFTMAX=1: softmax outputs, cross-entropy (delta = y - t).
 *
 * train_one:   one net after the other (the "C, one net at a time" peer).
 * train_lanes: the nets side by side, parameters laid out [param][net], the innermost loop over
 *              a block of nets, so the compiler puts consecutive nets in SIMD lanes (with
 *              -ffast-math -fopenmp-simd, exp vectorises through glibc's libmvec).
 * Parameters are given net-major like cprop's (W1 (NI, NH) row-major, b1, W2 (NH, NO), b2 per
 * net); both functions update them in place. Compiled by bench/populations.py with -DNI=... */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NP (NI * NH + NH + NH * NO + NO)

static inline double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

void train_one(int n_nets, int epochs, int n_rows, const double *X, const double *T, double lr,
               double *params)
{
    for (int n = 0; n < n_nets; n++) {
        double *W1 = params + (size_t)n * NP, *b1 = W1 + NI * NH, *W2 = b1 + NH, *b2 = W2 + NH * NO;
        for (int e = 0; e < epochs; e++) {
            for (int r = 0; r < n_rows; r++) {
                const double *x = X + r * NI, *t = T + r * NO;
                double h[NH], y[NO], dy[NO], dh[NH];
                for (int j = 0; j < NH; j++) {
                    double z = b1[j];
                    for (int i = 0; i < NI; i++) z += x[i] * W1[i * NH + j];
                    h[j] = sigmoid(z);
                }
                for (int k = 0; k < NO; k++) {
                    double z = b2[k];
                    for (int j = 0; j < NH; j++) z += h[j] * W2[j * NO + k];
                    y[k] = z;
                }
#if OUT_SOFTMAX
                double m = y[0], s = 0;
                for (int k = 1; k < NO; k++) m = y[k] > m ? y[k] : m;
                for (int k = 0; k < NO; k++) { y[k] = exp(y[k] - m); s += y[k]; }
                for (int k = 0; k < NO; k++) { y[k] /= s; dy[k] = y[k] - t[k]; }
#else
                for (int k = 0; k < NO; k++) {
                    y[k] = sigmoid(y[k]);
                    dy[k] = (y[k] - t[k]) * y[k] * (1 - y[k]);
                }
#endif
                for (int j = 0; j < NH; j++) {
                    double g = 0;
                    for (int k = 0; k < NO; k++) g += W2[j * NO + k] * dy[k];
                    dh[j] = g * h[j] * (1 - h[j]);
                }
                for (int j = 0; j < NH; j++)
                    for (int k = 0; k < NO; k++) W2[j * NO + k] -= lr * h[j] * dy[k];
                for (int k = 0; k < NO; k++) b2[k] -= lr * dy[k];
                for (int i = 0; i < NI; i++)
                    for (int j = 0; j < NH; j++) W1[i * NH + j] -= lr * x[i] * dh[j];
                for (int j = 0; j < NH; j++) b1[j] -= lr * dh[j];
            }
        }
    }
}

#define B 64 /* nets per block: the block's parameters and activations stay in L1 */

void train_lanes(int n_nets, int epochs, int n_rows, const double *X, const double *T, double lr,
                 double *params)
{
    double *P = aligned_alloc(64, sizeof(double) * NP * B);
    double h[NH][B], y[NO][B], dy[NO][B], dh[NH][B];
    for (int n0 = 0; n0 < n_nets; n0 += B) {
        int nb = n_nets - n0 < B ? n_nets - n0 : B;
        for (int p = 0; p < NP; p++)
            for (int l = 0; l < B; l++) P[p * B + l] = l < nb ? params[(size_t)(n0 + l) * NP + p] : 0;
        double *W1 = P, *b1 = P + NI * NH * B, *W2 = b1 + NH * B, *b2 = W2 + NH * NO * B;
        for (int e = 0; e < epochs; e++) {
            for (int r = 0; r < n_rows; r++) {
                const double *x = X + r * NI, *t = T + r * NO;
                for (int j = 0; j < NH; j++) {
#pragma omp simd
                    for (int l = 0; l < B; l++) {
                        double z = b1[j * B + l];
                        for (int i = 0; i < NI; i++) z += x[i] * W1[(i * NH + j) * B + l];
                        h[j][l] = 1.0 / (1.0 + exp(-z));
                    }
                }
                for (int k = 0; k < NO; k++) {
#pragma omp simd
                    for (int l = 0; l < B; l++) {
                        double z = b2[k * B + l];
                        for (int j = 0; j < NH; j++) z += h[j][l] * W2[(j * NO + k) * B + l];
                        y[k][l] = z;
                    }
                }
#if OUT_SOFTMAX
#pragma omp simd
                for (int l = 0; l < B; l++) {
                    double m = y[0][l], s = 0;
                    for (int k = 1; k < NO; k++) m = y[k][l] > m ? y[k][l] : m;
                    for (int k = 0; k < NO; k++) { y[k][l] = exp(y[k][l] - m); s += y[k][l]; }
                    for (int k = 0; k < NO; k++) dy[k][l] = y[k][l] / s - t[k];
                }
#else
                for (int k = 0; k < NO; k++) {
#pragma omp simd
                    for (int l = 0; l < B; l++) {
                        double v = 1.0 / (1.0 + exp(-y[k][l]));
                        dy[k][l] = (v - t[k]) * v * (1 - v);
                    }
                }
#endif
                for (int j = 0; j < NH; j++) {
#pragma omp simd
                    for (int l = 0; l < B; l++) {
                        double g = 0;
                        for (int k = 0; k < NO; k++) g += W2[(j * NO + k) * B + l] * dy[k][l];
                        dh[j][l] = g * h[j][l] * (1 - h[j][l]);
                    }
                }
                for (int j = 0; j < NH; j++)
                    for (int k = 0; k < NO; k++)
#pragma omp simd
                        for (int l = 0; l < B; l++) W2[(j * NO + k) * B + l] -= lr * h[j][l] * dy[k][l];
                for (int k = 0; k < NO; k++)
#pragma omp simd
                    for (int l = 0; l < B; l++) b2[k * B + l] -= lr * dy[k][l];
                for (int i = 0; i < NI; i++)
                    for (int j = 0; j < NH; j++)
#pragma omp simd
                        for (int l = 0; l < B; l++) W1[(i * NH + j) * B + l] -= lr * x[i] * dh[j][l];
                for (int j = 0; j < NH; j++)
#pragma omp simd
                    for (int l = 0; l < B; l++) b1[j * B + l] -= lr * dh[j][l];
            }
        }
        for (int p = 0; p < NP; p++)
            for (int l = 0; l < nb; l++) params[(size_t)(n0 + l) * NP + p] = P[p * B + l];
    }
    free(P);
}
