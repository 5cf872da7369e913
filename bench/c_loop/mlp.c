/* W2 limit: a one-hidden-layer MLP (N_IN - N_HID - N_OUT; sigmoid hidden, softmax output,
 * cross-entropy) trained by plain minibatch SGD in a fixed sample order, written by hand in C.
 *
 * The layer sizes are compile-time constants, so the compiler knows every trip count:
 *     cc -O3 -march=native -DN_IN=64 -DN_HID=32 -DN_OUT=10 mlp.c -o mlp -lm
 * bench/run.py copies this file to a temporary directory, compiles it and runs
 *     ./mlp X.bin LABELS.bin PARAMS_IN.bin PARAMS_OUT.bin N_SAMPLES BATCH EPOCHS LR REPEATS
 * X.bin: N_SAMPLES x N_IN float64, row-major; LABELS.bin: N_SAMPLES int32 class labels;
 * PARAMS_*.bin: float64 in cprop's flat layout (W1 (N_IN, N_HID) row-major, b1, W2, b2).
 * Each repeat starts from PARAMS_IN and trains EPOCHS epochs; only the epochs are timed.
 *
 * The arithmetic is cprop's kernel's, in the same order: z = b, then z += a_i * W_ij for
 * i = 0, 1, ...; the sign-branching sigmoid; a max-shifted softmax; the output delta y - onehot;
 * the hidden delta (sum_k W2_ik d_k) * h(1 - h) with W2 before its update; gradients summed over
 * the batch's samples in order, divided by the batch size, then w <- w - lr * g (weights and
 * biases). With BATCH = 1 the update is fused into the backward pass (no gradient buffer; the
 * same numbers). The loss of each sample, logsumexp(z) - z_label, is accumulated in double as
 * cprop's fit does. With -ffp-contract=off the final parameters are bit-identical to cprop's.
 *
 * Output: ns_per_sample (every repeat), epoch_loss (each epoch of the last repeat).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef N_IN
#error "compile with -DN_IN=... -DN_HID=... -DN_OUT=..."
#endif

#define N_PARAMS (N_IN * N_HID + N_HID + N_HID * N_OUT + N_OUT)

static inline double sigmoid(double z) {
    double e;
    if (z >= 0) {
        e = exp(-z);
        return 1 / (1 + e);
    }
    e = exp(z);
    return e / (1 + e);
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *read_file(const char *path, size_t bytes) {
    void *buf = malloc(bytes ? bytes : 1);
    FILE *f = fopen(path, "rb");
    if (!buf || !f || fread(buf, 1, bytes, f) != bytes) {
        fprintf(stderr, "cannot read %zu bytes from %s\n", bytes, path);
        exit(1);
    }
    fclose(f);
    return buf;
}

/* Forward one sample: h = sigmoid(x W1 + b1), z = h W2 + b2, y = softmax(z). Returns the loss
 * logsumexp(z) - z[label]. */
static inline double forward(const double *restrict x, int label, const double *restrict p,
                             double *restrict h, double *restrict y) {
    const double *W1 = p, *b1 = p + N_IN * N_HID;
    const double *W2 = b1 + N_HID, *b2 = W2 + N_HID * N_OUT;
    double z[N_OUT];
    for (int j = 0; j < N_HID; j++) h[j] = b1[j];
    for (int i = 0; i < N_IN; i++) {
        double a = x[i];
        for (int j = 0; j < N_HID; j++) h[j] += a * W1[i * N_HID + j];
    }
    for (int j = 0; j < N_HID; j++) h[j] = sigmoid(h[j]);
    for (int k = 0; k < N_OUT; k++) z[k] = b2[k];
    for (int i = 0; i < N_HID; i++) {
        double a = h[i];
        for (int k = 0; k < N_OUT; k++) z[k] += a * W2[i * N_OUT + k];
    }
    double m = z[0], s = 0;
    for (int k = 1; k < N_OUT; k++)
        if (z[k] > m) m = z[k];
    for (int k = 0; k < N_OUT; k++) {
        y[k] = exp(z[k] - m);
        s += y[k];
    }
    for (int k = 0; k < N_OUT; k++) y[k] = y[k] / s;
    return (m + log(s)) - z[label];
}

int main(int argc, char **argv) {
    if (argc != 10) {
        fprintf(stderr, "usage: %s X LABELS PARAMS_IN PARAMS_OUT N BATCH EPOCHS LR REPEATS\n",
                argv[0]);
        return 2;
    }
    long n = atol(argv[5]), batch = atol(argv[6]);
    int epochs = atoi(argv[7]), repeats = atoi(argv[9]);
    double lr = strtod(argv[8], NULL);
    double *X = read_file(argv[1], (size_t)n * N_IN * sizeof(double));
    int *labels = read_file(argv[2], (size_t)n * sizeof(int));
    double *init = read_file(argv[3], N_PARAMS * sizeof(double));
    static double p[N_PARAMS], g[N_PARAMS];
    double *W1 = p, *b1 = p + N_IN * N_HID, *W2 = b1 + N_HID, *b2 = W2 + N_HID * N_OUT;
    double *gW1 = g, *gb1 = g + N_IN * N_HID, *gW2 = gb1 + N_HID, *gb2 = gW2 + N_HID * N_OUT;
    double *epoch_loss = calloc(epochs, sizeof(double));

    for (int rep = 0; rep < repeats; rep++) {
        memcpy(p, init, sizeof p);
        double t0 = now_ns();
        for (int e = 0; e < epochs; e++) {
            double loss_sum = 0;
            for (long start = 0; start < n; start += batch) {
                long count = n - start < batch ? n - start : batch;
                if (batch == 1) {
                    /* Single-sample SGD with the update fused into the backward pass. */
                    const double *x = X + start * N_IN;
                    int label = labels[start];
                    double h[N_HID], y[N_OUT], d1[N_HID];
                    loss_sum += forward(x, label, p, h, y);
                    y[label] -= 1; /* y is now the output delta */
                    for (int i = 0; i < N_HID; i++) {
                        double s = 0;
                        for (int k = 0; k < N_OUT; k++) s += W2[i * N_OUT + k] * y[k];
                        d1[i] = s * (h[i] * (1 - h[i]));
                    }
                    for (int i = 0; i < N_HID; i++) {
                        double a = h[i];
                        for (int k = 0; k < N_OUT; k++)
                            W2[i * N_OUT + k] = W2[i * N_OUT + k] - lr * (a * y[k]);
                    }
                    for (int k = 0; k < N_OUT; k++) b2[k] = b2[k] - lr * y[k];
                    for (int i = 0; i < N_IN; i++) {
                        double a = x[i];
                        for (int j = 0; j < N_HID; j++)
                            W1[i * N_HID + j] = W1[i * N_HID + j] - lr * (a * d1[j]);
                    }
                    for (int j = 0; j < N_HID; j++) b1[j] = b1[j] - lr * d1[j];
                    continue;
                }
                memset(g, 0, sizeof g);
                for (long r = start; r < start + count; r++) {
                    const double *x = X + r * N_IN;
                    double h[N_HID], y[N_OUT], d1[N_HID];
                    loss_sum += forward(x, labels[r], p, h, y);
                    y[labels[r]] -= 1;
                    for (int i = 0; i < N_HID; i++) {
                        double a = h[i];
                        for (int k = 0; k < N_OUT; k++) gW2[i * N_OUT + k] += a * y[k];
                    }
                    for (int k = 0; k < N_OUT; k++) gb2[k] += y[k];
                    for (int i = 0; i < N_HID; i++) {
                        double s = 0;
                        for (int k = 0; k < N_OUT; k++) s += W2[i * N_OUT + k] * y[k];
                        d1[i] = s * (h[i] * (1 - h[i]));
                    }
                    for (int i = 0; i < N_IN; i++) {
                        double a = x[i];
                        for (int j = 0; j < N_HID; j++) gW1[i * N_HID + j] += a * d1[j];
                    }
                    for (int j = 0; j < N_HID; j++) gb1[j] += d1[j];
                }
                for (int k = 0; k < N_PARAMS; k++) p[k] = p[k] - lr * (g[k] / (double)count);
            }
            epoch_loss[e] = loss_sum / (double)n;
        }
        double elapsed = now_ns() - t0;
        printf("%s%.6f", rep == 0 ? "ns_per_sample " : " ", elapsed / ((double)n * epochs));
    }
    printf("\nepoch_loss");
    for (int e = 0; e < epochs; e++) printf(" %.17g", epoch_loss[e]);
    printf("\n");
    FILE *f = fopen(argv[4], "wb");
    if (!f || fwrite(p, sizeof(double), N_PARAMS, f) != N_PARAMS) {
        fprintf(stderr, "cannot write %s\n", argv[4]);
        return 1;
    }
    fclose(f);
    return 0;
}
