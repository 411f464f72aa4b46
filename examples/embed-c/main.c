/* Classifies the MNIST test digits with a bundle linked into this program.
 *
 *   xenon compile examples/models/mlp_784_100_10.yaml --weights w.safetensors \
 *       --name mnist_mlp -o bundle
 *   cargo build --release -p xenon-capi
 *   cc -O2 -I bundle examples/embed-c/main.c bundle/mnist_mlp.o \
 *       target/release/libxenon_capi.a -lm -lpthread -ldl -o classify
 *   ./classify bundle/mnist_mlp.safetensors DIR [OUTPUTS] [--first]
 *
 * DIR holds the raw (uncompressed) IDX files t10k-images-idx3-ubyte and
 * t10k-labels-idx1-ubyte. Prints the misclassification; with OUTPUTS, writes every
 * sample's outputs there, one line per sample; with --first, stops after the first
 * prediction (to time a cold start). Pixels are scaled as Xenon's loader does
 * (byte / 255). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mnist_mlp.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static unsigned char *read_file(const char *dir, const char *name, size_t *len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static unsigned be32(const unsigned char *p) {
    return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
}

int main(int argc, char **argv) {
    double start = now_ms();
    int first_only = argc > 1 && strcmp(argv[argc - 1], "--first") == 0;
    if (first_only) argc--;
    if (argc < 3) {
        fprintf(stderr, "usage: %s WEIGHTS DATA_DIR [OUTPUTS] [--first]\n", argv[0]);
        return 2;
    }
    xenon_model *model = NULL;
    xenon_status s = mnist_mlp_open(argv[1], &model);
    if (s != XENON_OK) {
        fprintf(stderr, "open: %s: %s\n", xenon_status_name(s), xenon_last_error());
        return 1;
    }
    size_t ilen = 0, llen = 0;
    unsigned char *images = read_file(argv[2], "t10k-images-idx3-ubyte", &ilen);
    unsigned char *labels = read_file(argv[2], "t10k-labels-idx1-ubyte", &llen);
    if (!images || !labels || ilen < 16 || llen < 8 || be32(images) != 0x803 ||
        be32(labels) != 0x801) {
        fprintf(stderr, "malformed IDX files\n");
        return 1;
    }
    size_t n = be32(images + 4), pixels = (size_t)be32(images + 8) * be32(images + 12);
    if (pixels * MNIST_MLP_BATCH != MNIST_MLP_INPUT_0_LEN || ilen < 16 + n * pixels ||
        be32(labels + 4) != n || llen < 8 + n) {
        fprintf(stderr, "the IDX files do not fit the bundle (%zu pixels per image)\n", pixels);
        return 1;
    }
    FILE *out = argc > 3 ? fopen(argv[3], "w") : NULL;
    const size_t classes = MNIST_MLP_OUTPUT_0_LEN / MNIST_MLP_BATCH;
    static mnist_mlp_input_0_t x[MNIST_MLP_INPUT_0_LEN];
    static mnist_mlp_output_0_t y[MNIST_MLP_OUTPUT_0_LEN];
    const void *inputs[1] = {x};
    void *outputs[1] = {y};
    size_t input_bytes[1] = {sizeof x}, output_bytes[1] = {sizeof y};
    size_t wrong = 0;
    double first = 0;
    for (size_t b0 = 0; b0 < n; b0 += MNIST_MLP_BATCH) {
        /* The last batch wraps around to the first samples. */
        for (size_t i = 0; i < MNIST_MLP_BATCH; i++) {
            const unsigned char *img = images + 16 + ((b0 + i) % n) * pixels;
            for (size_t p = 0; p < pixels; p++) x[i * pixels + p] = (float)img[p] / 255.0f;
        }
        s = xenon_run(model, inputs, input_bytes, 1, outputs, output_bytes, 1);
        if (s != XENON_OK) {
            fprintf(stderr, "run: %s: %s\n", xenon_status_name(s), xenon_last_error());
            return 1;
        }
        if (b0 == 0) {
            first = now_ms() - start;
            if (first_only) {
                printf("first prediction:   %.3f ms after start\n", first);
                return 0;
            }
        }
        for (size_t i = 0; i < MNIST_MLP_BATCH && b0 + i < n; i++) {
            const mnist_mlp_output_0_t *row = y + i * classes;
            size_t best = 0;
            for (size_t c = 1; c < classes; c++)
                if (row[c] > row[best]) best = c;
            wrong += best != labels[8 + b0 + i];
            if (out) {
                for (size_t c = 0; c < classes; c++)
                    fprintf(out, c ? " %.9g" : "%.9g", (double)row[c]);
                fputc('\n', out);
            }
        }
    }
    if (out) fclose(out);
    printf("test samples:       %zu\n", n);
    printf("misclassification:  %.2f%%\n", 100.0 * (double)wrong / (double)n);
    printf("first prediction:   %.3f ms after start\n", first);
    xenon_free(model);
    free(images);
    free(labels);
    return 0;
}
