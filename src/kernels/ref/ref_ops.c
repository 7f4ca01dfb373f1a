/* src/kernels/ref/ref_ops.c: reference norms, activations, softmax and rotary embedding.
 * Reductions (sums of squares, means, softmax denominators) run in double, left to right, so
 * the reference is closer to the exact value than any fp32 kernel it checks. */
#include <math.h>

#include "kernels/ref/ref.h"

void avl__ref_rmsnorm(float *y, const float *x, const float *w, int64_t rows, int64_t dim,
                      float eps)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        double ss = 0.0;
        for (int64_t i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        double inv = 1.0 / sqrt(ss / (double)dim + (double)eps);
        for (int64_t i = 0; i < dim; i++) yr[i] = (float)(xr[i] * inv * w[i]);
    }
}

void avl__ref_layernorm(float *y, const float *x, const float *w, const float *b, int64_t rows,
                        int64_t dim, float eps)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        double mean = 0.0, var = 0.0;
        for (int64_t i = 0; i < dim; i++) mean += xr[i];
        mean /= (double)dim;
        for (int64_t i = 0; i < dim; i++) var += (xr[i] - mean) * (xr[i] - mean);
        var /= (double)dim;
        double inv = 1.0 / sqrt(var + (double)eps);
        for (int64_t i = 0; i < dim; i++)
            yr[i] = (float)((xr[i] - mean) * inv * w[i] + (b ? b[i] : 0.0));
    }
}

void avl__ref_silu_mul(float *y, const float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double gv = g[i];
        y[i] = (float)(gv / (1.0 + exp(-gv)) * u[i]);
    }
}

void avl__ref_gelu(float *y, const float *x, int64_t n, bool tanh_approx)
{
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        if (tanh_approx)
            y[i] = (float)(0.5 * v * (1.0 + tanh(sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v))));
        else
            y[i] = (float)(0.5 * v * (1.0 + erf(v / sqrt(2.0))));
    }
}

void avl__ref_softmax_rows(float *x, int64_t rows, int64_t cols, int64_t ld)
{
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * ld;
        float mx = -INFINITY;
        for (int64_t j = 0; j < cols; j++)
            if (xr[j] > mx) mx = xr[j];
        if (mx == -INFINITY) {
            for (int64_t j = 0; j < cols; j++) xr[j] = 0.0f;
            continue;
        }
        double sum = 0.0;
        for (int64_t j = 0; j < cols; j++) sum += exp((double)xr[j] - mx);
        for (int64_t j = 0; j < cols; j++) xr[j] = (float)(exp((double)xr[j] - mx) / sum);
    }
}

void avl__ref_rope(float *x, int64_t ldx, int64_t rows, int64_t n_heads, int64_t hd,
                   const float *cos, const float *sin, int64_t ldcs)
{
    int64_t half = hd / 2;
    for (int64_t r = 0; r < rows; r++) {
        const float *c = cos + r * ldcs, *s = sin + r * ldcs;
        for (int64_t h = 0; h < n_heads; h++) {
            float *v = x + r * ldx + h * hd;
            for (int64_t i = 0; i < half; i++) {
                double a = v[i], b = v[i + half];
                v[i] = (float)(a * c[i] - b * s[i]);
                v[i + half] = (float)(b * c[i + half] + a * s[i + half]);
            }
        }
    }
}
