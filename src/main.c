/* longconv: train | eval | inspect | help */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checkpoint.h"
#include "core/config.h"
#include "core/error.h"
#include "train/bench_train.h"
#include "train/trainer.h"
#ifdef LONGCONV_CUDA
#include "kernels/cuda/fftconv/bench_conv.h"
#endif

static void usage(FILE *f) {
    fprintf(f,
            "usage:\n"
            "  longconv train CONFIG.yaml [section.key=value ...] [--resume CKPT|auto]\n"
            "  longconv eval CONFIG.yaml --ckpt CKPT [section.key=value ...]\n"
            "  longconv dump CONFIG.yaml --out STATE.h5 [--ckpt CKPT] [section.key=value ...]\n"
            "  longconv inspect CKPT.h5\n"
            "  longconv bench conv [--json FILE] [--max-n L] [--iters K]\n"
            "  longconv bench train CONFIG.yaml [section.key=value ...] [--steps N] [--warmup N] [--profile-steps N] [--json FILE]\n"
            "  longconv help [config [--markdown]]\n"
            "\n"
            "train   trains from a YAML config; key=value pairs override it (e.g. train.lr=3e-4).\n"
            "        --resume auto continues from the newest checkpoint in train.out_dir.\n"
            "        SIGINT/SIGTERM finish the step, write a checkpoint and exit 0.\n"
            "eval    validation loss and perplexity of a checkpoint.\n"
            "dump    writes the loss and every gradient of the first training batch (for the\n"
            "        PyTorch cross-check, scripts/reference_hyena.py).\n"
            "inspect prints a checkpoint's step, config and parameter table.\n"
            "bench conv times the GPU long convolutions against the cuFFT baseline and the memory floor.\n"
            "bench train times training steps (tokens/s, ms/step, MFU, peak memory) and prints the time per op.\n"
            "help config lists every config key with type, default, range and meaning.\n");
}

/* Load CONFIG then apply overrides; pulls out `--flag value` pairs named in flag (and flag2). */
static void parse_config_args2(int argc, char **argv, Config *c, const char *flag, const char **flag_value,
                               const char *flag2, const char **flag2_value) {
    if (argc < 1 || argv[0][0] == '-') {
        usage(stderr);
        lc_die("missing CONFIG.yaml");
    }
    config_defaults(c);
    config_load_file(c, argv[0]);
    for (int i = 1; i < argc; i++) {
        if (flag && strcmp(argv[i], flag) == 0) {
            if (i + 1 >= argc) lc_die("%s needs a value", flag);
            *flag_value = argv[++i];
        } else if (flag2 && strcmp(argv[i], flag2) == 0) {
            if (i + 1 >= argc) lc_die("%s needs a value", flag2);
            *flag2_value = argv[++i];
        } else if (argv[i][0] == '-') {
            lc_die("unknown option '%s' (see longconv help)", argv[i]);
        } else {
            config_apply_override(c, argv[i]);
        }
    }
    config_validate(c);
}

static void parse_config_args(int argc, char **argv, Config *c, const char *flag, const char **flag_value) {
    parse_config_args2(argc, argv, c, flag, flag_value, NULL, NULL);
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (argc >= 3 && strcmp(argv[2], "config") == 0) {
            /* --markdown regenerates the table in docs/config.md */
            config_print_help(stdout, argc >= 4 && strcmp(argv[3], "--markdown") == 0);
            return 0;
        }
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    Config cfg;
    if (strcmp(cmd, "train") == 0) {
        const char *resume = NULL;
        parse_config_args(argc - 2, argv + 2, &cfg, "--resume", &resume);
        return train_run(&cfg, resume);
    }
    if (strcmp(cmd, "eval") == 0) {
        const char *ckpt = NULL;
        parse_config_args(argc - 2, argv + 2, &cfg, "--ckpt", &ckpt);
        if (!ckpt) lc_die("eval needs --ckpt CKPT");
        return eval_run(&cfg, ckpt);
    }
    if (strcmp(cmd, "dump") == 0) {
        const char *ckpt = NULL, *out = NULL;
        parse_config_args2(argc - 2, argv + 2, &cfg, "--ckpt", &ckpt, "--out", &out);
        if (!out) lc_die("dump needs --out STATE.h5");
        return dump_run(&cfg, ckpt, out);
    }
    if (strcmp(cmd, "inspect") == 0) {
        if (argc != 3) lc_die("usage: longconv inspect CKPT.h5");
        ckpt_inspect(argv[2], stdout);
        return 0;
    }
    if (strcmp(cmd, "bench") == 0) {
        if (argc >= 3 && strcmp(argv[2], "train") == 0) return bench_train_main(argc - 3, argv + 3);
        if (argc < 3 || strcmp(argv[2], "conv") != 0) lc_die("usage: longconv bench conv|train [options]");
#ifdef LONGCONV_CUDA
        return bench_conv_main(argc - 3, argv + 3);
#else
        lc_die("longconv bench conv needs a build with CUDA (nvcc was not found)");
#endif
    }
    usage(stderr);
    lc_die("unknown command '%s'", cmd);
}
