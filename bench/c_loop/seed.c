/* W1 limit: the seed network (2-2-2, sigmoid hidden and output, squared error, biases fixed)
 * trained by single-sample SGD on one sample, written by hand in C.
 *
 * bench/run.py copies this file to a temporary directory and compiles it with
 *     cc -O3 -march=native seed.c -o seed -lm
 * then runs  ./seed N_STEPS REPEATS W1_00 W1_01 W1_10 W1_11 W2_00 W2_01 W2_10 W2_11
 *                   b1_0 b1_1 b2_0 b2_1 x_0 x_1 t_0 t_1 lr
 * (every number as %.17g, so it round-trips exactly). Each repeat starts from the given weights
 * and takes N_STEPS steps; only the steps are timed (clock_gettime, CLOCK_MONOTONIC).
 *
 * The arithmetic is cprop's kernel's, in the same order (z = b, then z += a_i * W_ij for
 * i = 0, 1; the sign-branching sigmoid; delta = (y - t) * y(1 - y); the hidden delta uses W2
 * before its update; w <- w - lr * g), and the epoch loss sum_k 1/2 (t_k - y_k)^2 is accumulated
 * as cprop's fit does. Compiled with -ffp-contract=off the final weights are bit-identical to
 * cprop's; with the default contraction (FMA under -march=native) they differ in the last bits.
 *
 * Output, one "key value..." per line: ns_per_step (every repeat), loss_mean (of the last repeat),
 * weights (W1 row-major, then W2), all %.17g.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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

int main(int argc, char **argv) {
    if (argc != 20) {
        fprintf(stderr, "usage: %s N_STEPS REPEATS W1(4) W2(4) b1(2) b2(2) x(2) t(2) lr\n",
                argv[0]);
        return 2;
    }
    long n_steps = atol(argv[1]);
    int repeats = atoi(argv[2]);
    double init[12], x[2], t[2], lr;
    for (int k = 0; k < 12; k++) init[k] = strtod(argv[3 + k], NULL);
    x[0] = strtod(argv[15], NULL);
    x[1] = strtod(argv[16], NULL);
    t[0] = strtod(argv[17], NULL);
    t[1] = strtod(argv[18], NULL);
    lr = strtod(argv[19], NULL);

    double W1[2][2], W2[2][2], b1[2], b2[2];
    double loss_sum = 0.0;
    for (int rep = 0; rep < repeats; rep++) {
        W1[0][0] = init[0]; W1[0][1] = init[1]; W1[1][0] = init[2]; W1[1][1] = init[3];
        W2[0][0] = init[4]; W2[0][1] = init[5]; W2[1][0] = init[6]; W2[1][1] = init[7];
        b1[0] = init[8]; b1[1] = init[9]; b2[0] = init[10]; b2[1] = init[11];
        loss_sum = 0.0;
        double t0 = now_ns();
        for (long s = 0; s < n_steps; s++) {
            double h[2], y[2], d2[2], d1[2];
            for (int j = 0; j < 2; j++) {
                double z = b1[j];
                z += x[0] * W1[0][j];
                z += x[1] * W1[1][j];
                h[j] = sigmoid(z);
            }
            for (int j = 0; j < 2; j++) {
                double z = b2[j];
                z += h[0] * W2[0][j];
                z += h[1] * W2[1][j];
                y[j] = sigmoid(z);
            }
            double sample_loss = 0.0;
            for (int k = 0; k < 2; k++) {
                double diff = t[k] - y[k];
                sample_loss += 0.5 * diff * diff;
                d2[k] = (y[k] - t[k]) * (y[k] * (1 - y[k]));
            }
            loss_sum += sample_loss;
            for (int i = 0; i < 2; i++) {
                double s_ = 0;
                s_ += W2[i][0] * d2[0];
                s_ += W2[i][1] * d2[1];
                d1[i] = s_ * (h[i] * (1 - h[i]));
            }
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++) W2[i][j] = W2[i][j] - lr * (h[i] * d2[j]);
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++) W1[i][j] = W1[i][j] - lr * (x[i] * d1[j]);
        }
        double elapsed = now_ns() - t0;
        printf("%s%.6f", rep == 0 ? "ns_per_step " : " ", elapsed / (double)n_steps);
    }
    printf("\nloss_mean %.17g\nweights", loss_sum / (double)n_steps);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) printf(" %.17g", W1[i][j]);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) printf(" %.17g", W2[i][j]);
    printf("\n");
    return 0;
}
