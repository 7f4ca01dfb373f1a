/* src/media/mel.c: the Whisper log-mel spectrogram that Qwen2.5-Omni's audio encoder reads.
 *
 * Mirrors transformers' WhisperFeatureExtractor (models/whisper/feature_extraction_whisper.py,
 * _np_extract_fbank_features / _torch_extract_fbank_features) called the way
 * Qwen2_5OmniProcessor calls it (padding="max_length", truncation on, return_attention_mask):
 *   - the waveform is padded with zeros (or truncated) to n_samples = 4,800,000 (300 s, from the
 *     checkpoint's preprocessor_config.json: chunk_length 300, nb_max_frames 30000);
 *   - STFT: periodic Hann window of 400, hop 160, center=True with reflect padding of 200 on both
 *     sides, power spectrum |X|^2, and the last frame dropped (so frames = len/160);
 *   - mel: 128 triangular filters, slaney mel scale and slaney area normalisation, 0-8000 Hz
 *     (audio_utils.mel_filter_bank), applied as filters^T @ power;
 *   - log10(max(mel, 1e-10)), then max(x, max(x) - 8) over the whole padded spectrogram, then
 *     (x + 4) / 4;
 *   - feature_attention_mask: the sample-level mask taken every hop, i.e. 1 for frames whose first
 *     sample index (f*160) lies inside the signal.
 * Frames whose 400-sample window lies wholly in the zero padding have mel 0 and so log10 = -10;
 * they are filled directly instead of transformed (the test checks this against full computation).
 * FFT in fp32 (FFTW), the mel product and the logarithm in double.
 */
#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "avlens/media.h"
#include "base/internal.h"

/* FFTW's planner is not thread-safe. */
static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;

avl_mel_params avl_mel_default_params(void)
{
    avl_mel_params p = {.n_mels = 128, .n_fft = 400, .hop = 160, .rate = 16000, .pad_to = 4800000};
    return p;
}

void avl_media_buf_free(void *p) { avl__free(p); }

static double hz_to_mel(double f)
{
    /* slaney: linear below 1 kHz (3 mels per 200 Hz), logarithmic above */
    double m = 3.0 * f / 200.0;
    if (f >= 1000.0) m = 15.0 + log(f / 1000.0) * (27.0 / log(6.4));
    return m;
}

static double mel_to_hz(double m)
{
    double f = 200.0 * m / 3.0;
    if (m >= 15.0) f = 1000.0 * exp(log(6.4) / 27.0 * (m - 15.0));
    return f;
}

/* filters (n_freq, n_mels) in double */
static avl_status mel_filters_f64(int n_fft, int n_mels, int rate, double **out)
{
    int n_freq = n_fft / 2 + 1;
    double *fb = avl__calloc((size_t)n_freq * (size_t)n_mels, sizeof(double));
    double *pts = avl__malloc(sizeof(double) * (size_t)(n_mels + 2));
    if (!fb || !pts) {
        avl__free(fb);
        avl__free(pts);
        return avl__err(AVL_E_NOMEM, "log-mel: out of memory for the filter bank");
    }
    /* np.linspace(mel(0), mel(8000), n_mels + 2): i*step + start, the last one exact */
    double m_lo = hz_to_mel(0.0), m_hi = hz_to_mel(8000.0);
    double step = (m_hi - m_lo) / (n_mels + 1);
    for (int i = 0; i < n_mels + 2; i++) pts[i] = mel_to_hz(i * step + m_lo);
    pts[n_mels + 1] = mel_to_hz(m_hi);
    double fstep = (double)(rate / 2) / (n_freq - 1);
    for (int k = 0; k < n_freq; k++) {
        double f = k * fstep;
        if (k == n_freq - 1) f = rate / 2;
        for (int m = 0; m < n_mels; m++) {
            double down = -(pts[m] - f) / (pts[m + 1] - pts[m]);
            double up = (pts[m + 2] - f) / (pts[m + 2] - pts[m + 1]);
            double v = fmax(0.0, fmin(down, up));
            fb[(size_t)k * n_mels + m] = v * (2.0 / (pts[m + 2] - pts[m]));
        }
    }
    avl__free(pts);
    *out = fb;
    return AVL_OK;
}

avl_status avl_mel_filters(int n_fft, int n_mels, int rate, float *filters)
{
    double *fb;
    avl_status rc = mel_filters_f64(n_fft, n_mels, rate, &fb);
    if (rc) return rc;
    for (size_t i = 0; i < (size_t)(n_fft / 2 + 1) * (size_t)n_mels; i++) filters[i] = (float)fb[i];
    avl__free(fb);
    return AVL_OK;
}

/* numpy's "reflect" padding of x (length n) extended periodically: index i of the padded signal
 * that starts `pad` samples before x[0]. */
static inline int64_t reflect_index(int64_t i, int64_t n)
{
    if (n == 1) return 0;
    int64_t period = 2 * (n - 1);
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
}

avl_status avl_log_mel(const float *pcm, int64_t n, const avl_mel_params *p, float **mel_out,
                       int32_t **mask_out, int64_t *frames_out)
{
    *mel_out = NULL;
    if (mask_out) *mask_out = NULL;
    *frames_out = 0;
    if (p->n_fft < 2 || p->hop < 1 || p->n_mels < 1 || p->rate < 2 || p->pad_to < 0)
        return avl__err(AVL_E_ARG, "log-mel: bad parameters (n_fft %d, hop %d, n_mels %d)", p->n_fft,
                        p->hop, p->n_mels);
    if (n < 0 || (n > 0 && !pcm)) return avl__err(AVL_E_ARG, "log-mel: no samples");
    int64_t len = p->pad_to > 0 ? p->pad_to : n;   /* after padding / truncation */
    int64_t sig = n < len ? n : len;                /* samples of signal inside */
    if (len < 1) return avl__err(AVL_E_ARG, "log-mel: empty signal and no padding");
    const int nfft = p->n_fft, nfreq = nfft / 2 + 1, nm = p->n_mels;
    const int64_t half = nfft / 2, frames = len / p->hop;
    if (frames < 1)
        return avl__err(AVL_E_ARG, "log-mel: %lld samples give no frame of hop %d", (long long)len, p->hop);

    avl_status rc = AVL_OK;
    double *fb = NULL;
    float *mel = NULL, *in = NULL, *win = NULL;
    fftwf_complex *spec = NULL;
    int32_t *mask = NULL;
    int *k0 = NULL, *k1 = NULL;
    fftwf_plan plan = NULL;
    if ((rc = mel_filters_f64(nfft, nm, p->rate, &fb))) return rc;
    mel = avl__malloc(sizeof(float) * (size_t)(nm * frames)); /* (n_mels, frames) */
    k0 = avl__malloc(sizeof(int) * (size_t)nm);
    k1 = avl__malloc(sizeof(int) * (size_t)nm);
    win = avl__malloc(sizeof(float) * (size_t)nfft);
    if (mask_out) mask = avl__malloc(sizeof(int32_t) * (size_t)frames);
    in = fftwf_malloc(sizeof(float) * (size_t)nfft);
    spec = fftwf_malloc(sizeof(fftwf_complex) * (size_t)nfreq);
    if (!mel || !k0 || !k1 || !win || (mask_out && !mask) || !in || !spec) {
        rc = avl__err(AVL_E_NOMEM, "log-mel: out of memory for %lld frames", (long long)frames);
        goto done;
    }
    pthread_mutex_lock(&plan_lock);
    plan = fftwf_plan_dft_r2c_1d(nfft, in, spec, FFTW_ESTIMATE);
    pthread_mutex_unlock(&plan_lock);
    if (!plan) {
        rc = avl__err(AVL_E_INTERNAL, "log-mel: FFTW could not plan a transform of %d", nfft);
        goto done;
    }
    /* periodic Hann, as np.hanning(N + 1)[:-1] and torch.hann_window(N) */
    for (int i = 0; i < nfft; i++) win[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / nfft));
    /* the nonzero span of each triangular filter */
    for (int m = 0; m < nm; m++) {
        k0[m] = nfreq;
        k1[m] = 0;
        for (int k = 0; k < nfreq; k++)
            if (fb[(size_t)k * nm + m] != 0.0) {
                if (k < k0[m]) k0[m] = k;
                k1[m] = k + 1;
            }
    }
    float power[1024 + 1];
    float *pw = nfreq <= 1025 ? power : NULL;
    if (!pw) {
        rc = avl__err(AVL_E_ARG, "log-mel: n_fft %d is larger than 2048", nfft);
        goto done;
    }
    double vmax = -INFINITY;
    for (int64_t f = 0; f < frames; f++) {
        int64_t first = f * p->hop - half; /* signal index of the window's first sample */
        bool zero = first >= sig && first + nfft <= len;
        if (zero) {
            for (int m = 0; m < nm; m++) mel[(int64_t)m * frames + f] = -10.0f;
            if (-10.0 > vmax) vmax = -10.0;
            continue;
        }
        for (int i = 0; i < nfft; i++) {
            int64_t j = reflect_index(first + i, len);
            in[i] = (j < sig ? pcm[j] : 0.0f) * win[i];
        }
        fftwf_execute(plan);
        for (int k = 0; k < nfreq; k++) pw[k] = spec[k][0] * spec[k][0] + spec[k][1] * spec[k][1];
        for (int m = 0; m < nm; m++) {
            double acc = 0.0;
            for (int k = k0[m]; k < k1[m]; k++) acc += fb[(size_t)k * nm + m] * (double)pw[k];
            double v = log10(fmax(acc, 1e-10));
            mel[(int64_t)m * frames + f] = (float)v;
            if (v > vmax) vmax = v;
        }
    }
    /* dynamic range: at most 8 (a factor 1e8 in power) below the loudest bin */
    float floor_v = (float)(vmax - 8.0);
    for (int64_t i = 0; i < nm * frames; i++) {
        float v = mel[i] < floor_v ? floor_v : mel[i];
        mel[i] = (v + 4.0f) / 4.0f;
    }
    if (mask)
        for (int64_t f = 0; f < frames; f++) mask[f] = f * p->hop < sig ? 1 : 0;
    *mel_out = mel;
    mel = NULL;
    if (mask_out) {
        *mask_out = mask;
        mask = NULL;
    }
    *frames_out = frames;
done:
    if (plan) {
        pthread_mutex_lock(&plan_lock);
        fftwf_destroy_plan(plan);
        pthread_mutex_unlock(&plan_lock);
    }
    fftwf_free(in);
    fftwf_free(spec);
    avl__free(fb);
    avl__free(mel);
    avl__free(mask);
    avl__free(k0);
    avl__free(k1);
    avl__free(win);
    return rc;
}
