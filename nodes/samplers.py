"""Sampler nodes: a SAMPLER of the sampler table with its options set (ComfyUI's
``comfy_extras/nodes_custom_sampler.py`` and ``nodes_advanced_samplers.py``).

Names, inputs, defaults and ranges are ComfyUI's (``advanced`` marks the inputs its editor
folds away); categories are those of ComfyUI's newest source
(``model/sampling/...``; nodes without a newer source keep the Oct 2025 copy's). Each node fixes
keyword options of one :mod:`ldm.sampling` sampler (:func:`configured_sampler`), so a node with
its defaults samples exactly as KSampler with that sampler's name.

SamplerDDIM and SamplerPLMS are Weft's own (ComfyUI has no such nodes): the paper's samplers,
``ddim_eta`` and ``plms`` (:mod:`ldm.sampling.samplers_compvis`), in the same shape.
"""

from __future__ import annotations

import functools

from ldm.sampling import samplers_er_sde
from ldm.sampling.custom import SamplerChoice
from ldm.sampling.from_handle import model_sampling_of
from ldm.sampling.samplers import SamplerSpec, configured_sampler
from ldm.sampling.samplers_cfgpp import sample_euler_cfg_pp_alternative
from ldm.sampling.samplers_sa_solver import tau_interval
from ldm.sampling.samplers_upscale import UPSCALE_METHODS, sample_lcm_upscale

CATEGORY = "model/sampling/samplers"
#: Samplers whose ComfyUI module (``nodes_advanced_samplers.py``, the LCM sampler) has no newer
#: source than the Oct 2025 copy keep that copy's category.
OLD_CATEGORY = "sampling/custom_sampling/samplers"
NOISE_DEVICES = ["gpu", "cpu"]


def _float(default: float, minimum: float = 0.0, maximum: float = 100.0, step: float = 0.01,
           advanced: bool = True, **extra) -> tuple:
    options = {"default": default, "min": minimum, "max": maximum, "step": step, "round": False, **extra}
    if advanced:
        options["advanced"] = True
    return ("FLOAT", options)


def _choice(name: str, **options) -> tuple:
    return (SamplerChoice(name, configured_sampler(name, **options)),)


def _on_device(name: str, noise_device: str) -> str:
    """ComfyUI's ``*_gpu`` name builds the Brownian tree on the sampling device."""
    return name if noise_device == "cpu" else f"{name}_gpu"


class SamplerEulerAncestral:
    CATEGORY = CATEGORY
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"eta": _float(1.0), "s_noise": _float(1.0)}}

    def get_sampler(self, eta, s_noise):
        return _choice("euler_ancestral", eta=eta, s_noise=s_noise)


class SamplerEulerAncestralCFGPP:
    CATEGORY = CATEGORY
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"eta": _float(1.0, maximum=1.0, advanced=False),
                             "s_noise": _float(1.0, maximum=10.0, advanced=False)}}

    def get_sampler(self, eta, s_noise):
        return _choice("euler_ancestral_cfg_pp", eta=eta, s_noise=s_noise)


class SamplerEulerCFGpp:
    CATEGORY = "_for_testing"
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"version": (["regular", "alternative"],)}}

    def get_sampler(self, version):
        if version == "alternative":
            return (SamplerChoice("euler_cfg_pp", SamplerSpec(sample_euler_cfg_pp_alternative)),)
        return _choice("euler_cfg_pp")


class SamplerLMS:
    CATEGORY = CATEGORY
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"order": ("INT", {"default": 4, "min": 1, "max": 100, "advanced": True})}}

    def get_sampler(self, order):
        return _choice("lms", order=order)


class SamplerLCM:
    DESCRIPTION = "LCM sampling with a per-step noise multiplier that may change from the first step to the last."
    CATEGORY = OLD_CATEGORY
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "s_noise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 64.0, "step": 0.01,
                                  "tooltip": "Per-step noise multiplier at the first step (1.0 = match training)."}),
            "s_noise_end": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 64.0, "step": 0.01,
                                      "tooltip": "Per-step noise multiplier at the last step. Set equal to "
                                                 "s_noise for a constant schedule."}),
            "noise_clip_std": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 10.0, "step": 0.01,
                                         "tooltip": "Clamp per-step noise to +/- N*std. 0 disables."}),
        }}

    def get_sampler(self, s_noise, s_noise_end, noise_clip_std):
        return _choice("lcm", s_noise=s_noise, s_noise_end=s_noise_end, noise_clip_std=noise_clip_std)


class SamplerDPMPP_2S_Ancestral:
    CATEGORY = CATEGORY
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"eta": _float(1.0, advanced=False), "s_noise": _float(1.0, advanced=False)}}

    def get_sampler(self, eta, s_noise):
        return _choice("dpmpp_2s_ancestral", eta=eta, s_noise=s_noise)


class SamplerDPMPP_SDE:
    CATEGORY = CATEGORY
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"eta": _float(1.0), "s_noise": _float(1.0), "r": _float(0.5),
                             "noise_device": (NOISE_DEVICES, {"advanced": True})}}

    def get_sampler(self, eta, s_noise, r, noise_device):
        return _choice(_on_device("dpmpp_sde", noise_device), eta=eta, s_noise=s_noise, r=r)


class SamplerDPMPP_2M_SDE:
    CATEGORY = CATEGORY
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"solver_type": (["midpoint", "heun"],), "eta": _float(1.0), "s_noise": _float(1.0),
                             "noise_device": (NOISE_DEVICES, {"advanced": True})}}

    def get_sampler(self, solver_type, eta, s_noise, noise_device):
        return _choice(_on_device("dpmpp_2m_sde", noise_device), eta=eta, s_noise=s_noise, solver_type=solver_type)


class SamplerDPMPP_3M_SDE:
    CATEGORY = CATEGORY
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"eta": _float(1.0), "s_noise": _float(1.0),
                             "noise_device": (NOISE_DEVICES, {"advanced": True})}}

    def get_sampler(self, eta, s_noise, noise_device):
        return _choice(_on_device("dpmpp_3m_sde", noise_device), eta=eta, s_noise=s_noise)


class SamplerDPMAdaptative:
    CATEGORY = CATEGORY
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"order": ("INT", {"default": 3, "min": 2, "max": 3, "advanced": True}),
                             "rtol": _float(0.05), "atol": _float(0.0078), "h_init": _float(0.05),
                             "pcoeff": _float(0.0), "icoeff": _float(1.0), "dcoeff": _float(0.0),
                             "accept_safety": _float(0.81), "eta": _float(0.0), "s_noise": _float(1.0)}}

    def get_sampler(self, order, rtol, atol, h_init, pcoeff, icoeff, dcoeff, accept_safety, eta, s_noise):
        return _choice("dpm_adaptive", order=order, rtol=rtol, atol=atol, h_init=h_init, pcoeff=pcoeff,
                       icoeff=icoeff, dcoeff=dcoeff, accept_safety=accept_safety, eta=eta, s_noise=s_noise)


class SamplerER_SDE:
    CATEGORY = CATEGORY
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "solver_type": (list(samplers_er_sde.SOLVER_TYPES),),
            "max_stage": ("INT", {"default": 3, "min": 1, "max": 3, "advanced": True}),
            "eta": _float(1.0, maximum=10.0, tooltip="Stochastic strength of SDEs.\nWhen eta=0, they reduce to "
                          "deterministic ODE.\nLarge eta may cause invalid outputs. If this occurs, try decreasing "
                          "this value."),
            "s_noise": _float(1.0)}}

    def get_sampler(self, solver_type, max_stage, eta, s_noise):
        if solver_type == "ODE" or eta == 0:
            solver_type, s_noise = "ODE", 0.0
        return _choice("er_sde", s_noise=s_noise, max_stage=max_stage,
                       noise_scaler=samplers_er_sde.noise_scaler_for(solver_type, eta))


class SamplerSASolver:
    CATEGORY = CATEGORY
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)

    @classmethod
    def INPUT_TYPES(cls):
        percent = {"min": 0.0, "max": 1.0, "step": 0.001, "advanced": True}
        return {"required": {
            "model": ("MODEL",),
            "eta": _float(1.0, maximum=10.0),
            "sde_start_percent": ("FLOAT", {"default": 0.2, **percent}),
            "sde_end_percent": ("FLOAT", {"default": 0.8, **percent}),
            "s_noise": _float(1.0),
            "predictor_order": ("INT", {"default": 3, "min": 1, "max": 6, "advanced": True}),
            "corrector_order": ("INT", {"default": 4, "min": 0, "max": 6, "advanced": True}),
            "use_pece": ("BOOLEAN", {"advanced": True}),
            "simple_order_2": ("BOOLEAN", {"advanced": True})}}

    def get_sampler(self, model, eta, sde_start_percent, sde_end_percent, s_noise, predictor_order, corrector_order,
                    use_pece, simple_order_2):
        sampling = model_sampling_of(model)
        tau = tau_interval(sampling.percent_to_sigma(sde_start_percent), sampling.percent_to_sigma(sde_end_percent),
                           eta)
        return _choice("sa_solver", tau_func=tau, s_noise=s_noise, predictor_order=predictor_order,
                       corrector_order=corrector_order, use_pece=use_pece, simple_order_2=simple_order_2)


class SamplerSEEDS2:
    CATEGORY = CATEGORY
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)
    DESCRIPTION = ("This sampler node can represent multiple samplers:\n\nseeds_2\n- default setting\n\n"
                   "exp_heun_2_x0\n- solver_type=phi_2, r=1.0, eta=0.0\n\n"
                   "exp_heun_2_x0_sde\n- solver_type=phi_2, r=1.0, eta=1.0, s_noise=1.0")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "solver_type": (["phi_1", "phi_2"],),
            "eta": _float(1.0, tooltip="Stochastic strength"),
            "s_noise": _float(1.0, tooltip="SDE noise multiplier"),
            "r": _float(0.5, minimum=0.01, maximum=1.0,
                        tooltip="Relative step size for the intermediate stage (c2 node)")}}

    def get_sampler(self, solver_type, eta, s_noise, r):
        return _choice("seeds_2", eta=eta, s_noise=s_noise, r=r, solver_type=solver_type)


class SamplerDDIM:
    DESCRIPTION = ("DDIM with eta, the latent diffusion paper's sampler: eta 0 is deterministic DDIM (ComfyUI's "
                   "ddim), eta 1 adds DDPM's ancestral noise at each step.")
    CATEGORY = CATEGORY
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "eta": _float(1.0, maximum=1.0, advanced=False,
                          tooltip="Share of DDPM's posterior noise added each step: 0 deterministic, 1 DDPM."),
            "s_noise": _float(1.0)}}

    def get_sampler(self, eta, s_noise):
        return _choice("ddim_eta", eta=eta, s_noise=s_noise)


class SamplerPLMS:
    DESCRIPTION = ("PLMS (pseudo linear multistep), the latent diffusion paper's text-to-image sampler: a pseudo "
                   "improved Euler first step, then Adams-Bashforth on up to 4 noise predictions.")
    CATEGORY = CATEGORY
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"order": ("INT", {"default": 4, "min": 1, "max": 4, "advanced": True,
                                               "tooltip": "How many noise predictions each step combines."})}}

    def get_sampler(self, order):
        return _choice("plms", order=order)


class SamplerLCMUpscale:
    CATEGORY = OLD_CATEGORY
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "scale_ratio": ("FLOAT", {"default": 1.0, "min": 0.1, "max": 20.0, "step": 0.01}),
            "scale_steps": ("INT", {"default": -1, "min": -1, "max": 1000, "step": 1}),
            "upscale_method": (list(UPSCALE_METHODS),)}}

    def get_sampler(self, scale_ratio, scale_steps, upscale_method):
        spec = SamplerSpec(functools.partial(sample_lcm_upscale, total_upscale=scale_ratio,
                                             upscale_method=upscale_method,
                                             upscale_steps=None if scale_steps < 0 else scale_steps))
        return (SamplerChoice("lcm", spec),)


NODE_CLASS_MAPPINGS = {
    "SamplerEulerAncestral": SamplerEulerAncestral,
    "SamplerEulerAncestralCFGPP": SamplerEulerAncestralCFGPP,
    "SamplerEulerCFGpp": SamplerEulerCFGpp,
    "SamplerLCM": SamplerLCM,
    "SamplerLMS": SamplerLMS,
    "SamplerDPMPP_2S_Ancestral": SamplerDPMPP_2S_Ancestral,
    "SamplerDPMPP_SDE": SamplerDPMPP_SDE,
    "SamplerDPMPP_2M_SDE": SamplerDPMPP_2M_SDE,
    "SamplerDPMPP_3M_SDE": SamplerDPMPP_3M_SDE,
    "SamplerDPMAdaptative": SamplerDPMAdaptative,
    "SamplerER_SDE": SamplerER_SDE,
    "SamplerSASolver": SamplerSASolver,
    "SamplerSEEDS2": SamplerSEEDS2,
    "SamplerLCMUpscale": SamplerLCMUpscale,
    "SamplerDDIM": SamplerDDIM,
    "SamplerPLMS": SamplerPLMS,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "SamplerEulerAncestralCFGPP": "SamplerEulerAncestralCFG++",
    "SamplerEulerCFGpp": "SamplerEulerCFG++",
}
