"""The report's sections: what each part measured, its figure and its table."""

from __future__ import annotations

from ..common import Study
from .figures import figure_gaussian, figure_mg25, figure_trained
from .settings import SAMPLERS, SHORT, D


def report_gaussian(study: Study, gauss: dict, tuning: dict) -> None:
    """Part 1's section: the closed-form errors and bounds, and the tuned a*."""
    study.section("Gaussian target, exact score (closed form)")
    study.text(
        f"N(𝟙, 0.5 I) in d = {D}; the sampler's output law is Gaussian with moments from the "
        "exact linear recursions (docs/theory.md §5.1), so KL(π_data ‖ π̂_N) and W2 have no Monte "
        "Carlo error. Bounds with the exact score (E2 = 0, ε = 0). Euler–Maruyama evaluates "
        "the score at the step's right end point (the authors' convention)."
    )
    figure_gaussian(study, gauss, tuning)
    Ns = list(gauss["bounds"])
    header = ["schedule"] + [f"{SHORT[s]} KL N={N}" for s in SAMPLERS for N in Ns]
    header += [f"KL bound N={Ns[0]}", f"W2 bound N={Ns[-1]}"]
    rows = []
    for lab in gauss["schedules"]:
        row = [lab] + [gauss["exact"][s][N]["kl"][lab] for s in SAMPLERS for N in Ns]
        rows.append([*row, gauss["bounds"][Ns[0]]["kl"][lab], gauss["bounds"][Ns[-1]]["w2"][lab]])
    study.table(header, rows)
    study.section("Tuned a (minimum of the exact-score W2 bound) against the linear schedule")
    header = ["N", "a*", "W2 bound a*", "W2 bound a=0"]
    header += [f"{SHORT[s]} {m} {w}" for s in SAMPLERS for m in ("KL", "W2") for w in ("a*", "a=0")]
    rows = []
    for N, r in tuning.items():
        rows.append(
            [N, r["a"], r["w2_bound_tuned"], r["w2_bound_linear"]]
            + [
                r[s][f"{m}_{w}"]
                for s in SAMPLERS
                for m in ("kl", "w2")
                for w in ("tuned", "linear")
            ]
        )
    study.table(header, rows)


def report_mg25(study: Study, mg: dict) -> None:
    """Part 2's section: MG25's kNN KL and KL bound (means over seeds)."""
    study.section("MG25, exact score (Monte Carlo; our extrapolation)")
    study.text(
        f"25 Gaussians on {{−2..2}}² (std 0.1), d = {mg['dim']}: a target from the authors' code, "
        f"not among the paper's findings. Per seed, n = {mg['n']} samples per configuration with "
        "the exact mixture score, every arm with the same prior draws and noise; kNN "
        "KL(π_data ‖ samples) (k = 1) and sliced W2 (64 directions) against one reference sample "
        "of n points shared by every arm. The metrics' noise (RMS of their value between the "
        "reference and independent draws of MG25): kNN KL "
        f"{mg['noise']['knn_kl']:.4f}, sliced W2 {mg['noise']['sliced_w2']:.4f}; a claim's "
        "margin is the noise of its own paired difference, from a second independent "
        "reference. The W2 bound does not apply (a mixture is not log-concave). The table "
        "shows the mean over seeds."
    )
    figure_mg25(study, mg)
    m = mg["mean"]
    Ns = list(m["kl_bound"])
    header = ["schedule"] + [f"{SHORT[s]} kNN KL N={N}" for s in SAMPLERS for N in Ns]
    header += [f"KL bound N={Ns[0]}"]
    rows = [
        [lab]
        + [m["exact"][s][N]["knn_kl"][lab] for s in SAMPLERS for N in Ns]
        + [m["kl_bound"][Ns[0]][lab]]
        for lab in mg["schedules"]
    ]
    study.table(header, rows)


def report_trained(study: Study, trained: dict, gauss: dict) -> None:
    """Part 3's section: the trained networks' errors and bounds (means over seeds)."""
    study.section("Trained networks (Gaussian target)")
    kt = trained["kl_tuned_with_linear_epsilon"]
    study.text(
        f"Per seed, one residual MLP (width {trained['width']}, 3 blocks) per schedule, trained "
        f"by explicit score matching for {trained['train_steps']} steps (batch 256, lr "
        f"{trained['lr']:g}, "
        "EMA); every schedule of a seed starts from the same initial weights and sees the same "
        f"training draws, prior draws and sampling noise. {trained['n_samples']} samples with "
        f"N = {trained['N']}; KL and W2 of the Gaussian fitted to the samples (KL bias ≈ "
        f"{trained['fit_bias_kl']:.4f}; noise, the floor's spread: KL "
        f"{trained['noise']['kl']:.5f}, W2 {trained['noise']['w2']:.5f}; a claim's margin is "
        "the noise of its paired difference on a second sample draw). Bounds use the "
        f"measured score error. 'tuned' is a* = {trained['a_tuned']:.2f} (W2 bound). Tuning "
        "the KL bound with the linear network's effective ε gives a = "
        + ", ".join(f"{k['a']:.2f} (ε = {k['epsilon']:.3f})" for k in kt)
        + " per seed. The table shows the mean over seeds."
    )
    figure_trained(study, trained, gauss)
    header = ["schedule"] + [f"{SHORT[s]} {m}" for s in SAMPLERS for m in ("KL", "W2")]
    header += ["KL bound", "E2", "W2 bound", "ε (max L²)"]
    rows = [
        [lab]
        + [r[s][m] for s in SAMPLERS for m in ("kl", "w2")]
        + [r["kl_bound"], r["kl_bound_E2"], r["w2_bound"], r["epsilon"]]
        for lab, r in trained["mean"].items()
    ]
    study.table(header, rows)
