"""The training config schema: one frozen dataclass per section of a PaddleOCR-style config.

Field names are the YAML keys (PaddleOCR's spelling, hence the capitalised ``Backbone`` etc.). Keys that
PaddleOCR configs carry but that do not apply to crnn (``use_visualdl``, ``infer_img``, ...) are typed
``Any`` and accepted so that a config copied from PaddleOCR loads unchanged. ``__post_init__`` checks
ranges and raises ``FieldError`` naming the field; config.py adds the section path and the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from crnn_cli.core.errors import ConfigError


class FieldError(ConfigError):
    """A value is out of range; ``key`` is the field (config.py prefixes the section path)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise FieldError(key, message)


def _one_of(value: str, allowed: tuple[str, ...], key: str) -> None:
    _check(value in allowed, key, f"must be one of {', '.join(allowed)}, got {value!r}")


# -- Global ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GlobalConfig:
    """``Global``: run length, logging, checkpoints, dictionary; plus crnn's seed/amp/ema/clip keys."""

    epoch_num: int = 72  # passes over the training set (the LR schedule spans them unless max_steps is set)
    print_batch_step: int = 10  # a log line (loss, lr, speed) every this many steps
    log_smooth_window: int = 20  # the logged loss is the mean over this many recent steps
    save_model_dir: str = "./output/rec/"  # checkpoints, metrics.jsonl and curves.png go here
    save_epoch_step: int = 0  # also keep iter_epoch_N.pt every N epochs; 0 = only latest/best
    eval_batch_step: int | list[int] = (0, 2000)  # [first step, interval] or just the interval, in steps
    cal_metric_during_train: bool = False  # also log accuracy of each logged training batch
    pretrained_model: str | None = None  # weights to start from (our .pt or a PaddleOCR .pdparams)
    checkpoints: str | None = None  # a checkpoint to resume from (same as --resume)
    character_dict_path: str | None = None  # dictionary file or built-in name (en, ic15); None = ic15
    use_space_char: bool = False  # append " " as the last class
    max_text_length: int = 25  # longer labels are left out of training and evaluation
    use_gpu: bool = True  # use CUDA when there is one
    # crnn additions
    seed: int = 1024  # seeds model init, data order, augmentation and synthetic images
    max_steps: int | None = None  # stop after this many optimizer steps; the LR schedule then spans them
    # true/"auto": bf16 (fp16 + loss scaling if no bf16) on CUDA, bf16 on CPUs that have it; "bf16" forces it
    amp: bool | str = False
    ema: bool = False  # evaluate and export an exponential moving average of the weights
    ema_decay: float = 0.999  # EMA weight of the old average per step
    grad_clip: float = 0.0  # clip the global gradient norm to this; 0 = no clipping
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1"; auto honours use_gpu
    deterministic: bool = False  # torch deterministic algorithms (slower; for reproducibility tests)
    threads: int = 0  # torch intra-op threads in the training process; 0 = torch's default
    # PaddleOCR keys accepted for compatibility; crnn does not use them
    save_inference_dir: Any = None
    use_visualdl: Any = None
    use_wandb: Any = None
    infer_img: Any = None
    infer_mode: Any = None
    save_res_path: Any = None
    distributed: Any = None  # crnn reads RANK/WORLD_SIZE from torchrun instead
    d2s_train_image_shape: Any = None
    character_type: Any = None
    use_npu: Any = None
    use_xpu: Any = None
    use_mlu: Any = None
    use_sync_bn: Any = None
    amp_level: Any = None
    scale_loss: Any = None
    use_dynamic_loss_scaling: Any = None
    uniform_output_enabled: Any = None
    model_name: Any = None
    use_amp: bool | None = None  # PaddleOCR's switch; true means amp: true

    def __post_init__(self) -> None:
        _check(self.epoch_num >= 1, "epoch_num", f"must be >= 1, got {self.epoch_num}")
        _check(self.print_batch_step >= 1, "print_batch_step", f"must be >= 1, got {self.print_batch_step}")
        _check(self.log_smooth_window >= 1, "log_smooth_window", "must be >= 1")
        _check(self.save_epoch_step >= 0, "save_epoch_step", "must be >= 0")
        _check(self.max_text_length >= 1, "max_text_length", f"must be >= 1, got {self.max_text_length}")
        _check(self.max_steps is None or self.max_steps >= 1, "max_steps", "must be >= 1")
        _check(0.0 <= self.ema_decay < 1.0, "ema_decay", f"must be in [0, 1), got {self.ema_decay}")
        _check(self.grad_clip >= 0 and math.isfinite(self.grad_clip), "grad_clip", "must be >= 0")
        _check(self.threads >= 0, "threads", "must be >= 0")
        step = self.eval_batch_step
        if isinstance(step, tuple):
            _check(
                len(step) == 2 and step[0] >= 0 and step[1] >= 1,
                "eval_batch_step",
                f"must be [first step >= 0, interval >= 1] or an interval, got {list(step)}",
            )
        else:
            _check(step >= 1, "eval_batch_step", f"interval must be >= 1, got {step}")
        if isinstance(self.amp, str):
            _one_of(self.amp.lower(), ("auto", "bf16", "fp16", "off"), "amp")

    @property
    def eval_start_interval(self) -> tuple[int, int]:
        """(first step eligible for evaluation, interval in steps)."""
        step = self.eval_batch_step
        return (int(step[0]), int(step[1])) if isinstance(step, tuple) else (0, int(step))

    @property
    def amp_mode(self) -> str:
        """ "off", "auto", "bf16" or "fp16" (train.py resolves "auto" against the device)."""
        if isinstance(self.amp, str):
            return self.amp.lower()
        return "auto" if (self.amp or self.use_amp) else "off"


# -- Architecture ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackboneConfig:
    """``Architecture.Backbone``: MobileNetV3 (scale, model_name) or ResNet (layers)."""

    name: str = "MobileNetV3"  # MobileNetV3 | ResNet (ResNet34_vd family) | ours: CrnnDefault
    scale: float = 0.5  # MobileNetV3 width multiplier
    model_name: str = "large"  # MobileNetV3 variant
    layers: int = 34  # ResNet depth
    disable_se: Any = None  # PaddleOCR key; accepted
    small_stride: Any = None  # PaddleOCR key; accepted


@dataclass(frozen=True)
class NeckConfig:
    """``Architecture.Neck``: the sequence encoder (a 2-layer BiLSTM for CRNN)."""

    name: str = "SequenceEncoder"
    encoder_type: str = "rnn"  # only "rnn" (BiLSTM) is a CRNN
    hidden_size: int = 48  # LSTM hidden units per direction

    def __post_init__(self) -> None:
        _one_of(self.encoder_type, ("rnn",), "encoder_type")
        _check(self.hidden_size >= 1, "hidden_size", "must be >= 1")


@dataclass(frozen=True)
class HeadConfig:
    """``Architecture.Head``: CTC classifier."""

    name: str = "CTCHead"
    fc_decay: float = 0.0  # L2 on the head's parameters, in place of Optimizer.regularizer (as PaddleOCR)
    mid_channels: Any = None  # PaddleOCR key; accepted (CRNN heads have none)
    return_feats: Any = None

    def __post_init__(self) -> None:
        _one_of(self.name, ("CTCHead",), "name")
        _check(self.fc_decay >= 0, "fc_decay", "must be >= 0")


@dataclass(frozen=True)
class ArchitectureConfig:
    """``Architecture``: which network to build. ``arch``/``arch_kwargs`` (ours) name it directly."""

    model_type: str = "rec"
    algorithm: str = "CRNN"
    Transform: Any = None  # PaddleOCR's optional rectification; CRNN has none
    Backbone: BackboneConfig = field(default_factory=BackboneConfig)
    Neck: NeckConfig = field(default_factory=NeckConfig)
    Head: HeadConfig = field(default_factory=HeadConfig)
    arch: str | None = None  # a models.build_model arch name; overrides the Backbone/Neck mapping
    arch_kwargs: dict[str, Any] = field(default_factory=dict)  # extra build_model keyword arguments

    def __post_init__(self) -> None:
        _one_of(self.model_type, ("rec",), "model_type")
        _one_of(self.algorithm, ("CRNN",), "algorithm")
        _check(self.Transform is None, "Transform", "crnn builds CRNNs without a rectification transform")


# -- Loss, Optimizer ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossConfig:
    """``Loss``: CTC is the only loss a CRNN trains with."""

    name: str = "CTCLoss"
    use_focal_loss: bool = False  # PaddleOCR key; crnn only supports false

    def __post_init__(self) -> None:
        _one_of(self.name, ("CTCLoss",), "name")
        _check(not self.use_focal_loss, "use_focal_loss", "focal CTC is not supported")


@dataclass(frozen=True)
class LrConfig:
    """``Optimizer.lr``: schedule by name, stepped per iteration; epochs convert with steps per epoch."""

    name: str = "Const"  # Const | Cosine | Piecewise
    learning_rate: float = 0.001  # peak (Const, Cosine) learning rate
    warmup_epoch: float = 0.0  # linear warmup from 0 over this many epochs
    warmup_steps: int = 0  # ours: warmup in steps (wins over warmup_epoch when > 0)
    decay_epochs: list[int] = ()  # Piecewise: epoch boundaries
    values: list[float] = ()  # Piecewise: len(decay_epochs) + 1 learning rates
    min_lr: float = 0.0  # ours: Cosine decays to this instead of 0
    last_epoch: Any = None  # PaddleOCR key; accepted

    def __post_init__(self) -> None:
        _one_of(self.name, ("Const", "Cosine", "Piecewise"), "name")
        _check(self.learning_rate >= 0, "learning_rate", "must be >= 0")
        _check(self.warmup_epoch >= 0 and self.warmup_steps >= 0, "warmup_epoch", "must be >= 0")
        if self.name == "Piecewise":
            _check(
                len(self.values) == len(self.decay_epochs) + 1,
                "values",
                f"Piecewise needs len(decay_epochs) + 1 = {len(self.decay_epochs) + 1} values, got {len(self.values)}",
            )
            _check(list(self.decay_epochs) == sorted(self.decay_epochs), "decay_epochs", "must increase")


@dataclass(frozen=True)
class RegularizerConfig:
    """``Optimizer.regularizer``: L2 with ``factor`` = weight decay added to the gradient (as Paddle's L2Decay)."""

    name: str = "L2"
    factor: float = 0.0

    def __post_init__(self) -> None:
        _one_of(self.name, ("L2",), "name")
        _check(self.factor >= 0, "factor", "must be >= 0")


@dataclass(frozen=True)
class OptimizerConfig:
    """``Optimizer``: Adam (coupled L2 via regularizer) or AdamW (decoupled ``weight_decay``)."""

    name: str = "Adam"
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    weight_decay: float = 0.0  # AdamW's decoupled decay
    no_weight_decay_name: str | None = None  # AdamW: space-separated name parts left undecayed
    one_dim_param_no_weight_decay: bool = True  # AdamW: biases and norm weights left undecayed
    clip_norm: float | None = None  # PaddleOCR's gradient clip; Global.grad_clip is the same
    lr: LrConfig = field(default_factory=LrConfig)
    regularizer: RegularizerConfig | None = None

    def __post_init__(self) -> None:
        _one_of(self.name, ("Adam", "AdamW"), "name")
        _check(0 <= self.beta1 < 1, "beta1", f"must be in [0, 1), got {self.beta1}")
        _check(0 <= self.beta2 < 1, "beta2", f"must be in [0, 1), got {self.beta2}")
        _check(self.epsilon > 0, "epsilon", "must be > 0")
        _check(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        _check(self.clip_norm is None or self.clip_norm >= 0, "clip_norm", "must be >= 0")


# -- data --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodeImageOp:
    """``DecodeImage``: crnn always decodes to BGR as PaddleOCR does."""

    img_mode: str = "BGR"
    channel_first: bool = False

    def __post_init__(self) -> None:
        _one_of(self.img_mode, ("BGR",), "img_mode")
        _check(not self.channel_first, "channel_first", "must be false (crnn lays images out H x W x C)")


@dataclass(frozen=True)
class LabelEncodeOp:
    """``CTCLabelEncode``: labels to class ids; filtering by dictionary and length is implied."""


@dataclass(frozen=True)
class RecAugOp:
    """``RecAug``: augmentation of real crops; each probability 0 turns that operation off."""

    ALIASES: ClassVar[dict[str, str]] = {}
    tia_prob: float = 0.4  # TIA-style warp: distort, stretch or perspective (one picked at random)
    crop_prob: float = 0.4  # cut a few rows off the top or bottom
    reverse_prob: float = 0.4  # invert the image (light text on dark)
    noise_prob: float = 0.4  # additive Gaussian noise
    jitter_prob: float = 0.4  # brightness/contrast jitter
    blur_prob: float = 0.4  # Gaussian blur
    hsv_aug_prob: float = 0.4  # hue/saturation/value shift
    arc_prob: float = 0.0  # crnn: bend the crop along a circle (arch or bowl), as curved signs are
    vanish_prob: float = 0.0  # crnn: one end of the crop farther away, as a sign seen from one side
    use_tia: bool | None = None  # older PaddleOCR switch: false sets tia_prob to 0
    # older PaddleOCR single probability: sets every *_prob but arc_prob and vanish_prob (crnn's own)
    aug_prob: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "tia_prob",
            "crop_prob",
            "reverse_prob",
            "noise_prob",
            "jitter_prob",
            "blur_prob",
            "hsv_aug_prob",
            "arc_prob",
            "vanish_prob",
        ):
            v = getattr(self, name)
            _check(0.0 <= v <= 1.0, name, f"is a probability in [0, 1], got {v}")
        _check(self.aug_prob is None or 0 <= self.aug_prob <= 1, "aug_prob", "is a probability in [0, 1]")

    def probabilities(self) -> dict[str, float]:
        """Operation -> probability, after the older use_tia / aug_prob switches (PaddleOCR's; they
        leave crnn's own arc_prob and vanish_prob as they are)."""
        names = ("tia", "crop", "reverse", "noise", "jitter", "blur", "hsv_aug")
        probs = {n: getattr(self, f"{n}_prob") for n in names}
        if self.aug_prob is not None:
            probs = dict.fromkeys(names, self.aug_prob)
        if self.use_tia is False:
            probs["tia"] = 0.0
        probs["arc"] = self.arc_prob
        probs["vanish"] = self.vanish_prob
        return probs


@dataclass(frozen=True)
class RecResizeImgOp:
    """``RecResizeImg``: the model input shape; ``dynamic_width`` etc. are ours (see core/preprocess.py)."""

    image_shape: list[int] = (3, 32, 100)  # C, H, W; W is the fixed width or, if dynamic, the minimum
    padding: bool = True  # PaddleOCR pads on the right (true); false is not supported
    dynamic_width: bool = False  # crops keep their aspect ratio; a batch pads to its widest crop
    max_width: int = 800  # dynamic width: wider crops are squashed to this
    width_step: int = 4  # dynamic width: padded widths are a multiple of this (one CTC frame = 4 px)
    min_aspect: float | None = None  # crops narrower than this times the height are stretched to it
    infer_mode: Any = None  # PaddleOCR keys; accepted
    eval_mode: Any = None
    character_dict_path: Any = None

    def __post_init__(self) -> None:
        shape = self.image_shape
        _check(len(shape) == 3, "image_shape", f"must be [C, H, W], got {list(shape)}")
        _check(shape[0] in (1, 3), "image_shape", f"channels must be 1 or 3, got {shape[0]}")
        _check(
            8 <= shape[1] <= 1024 and 4 <= shape[2] <= 16384,
            "image_shape",
            f"H, W out of range: {list(shape)}",
        )
        _check(self.padding, "padding", "only right padding (true) is supported")
        _check(self.max_width >= shape[2], "max_width", f"must be >= the width {shape[2]}")
        _check(self.width_step >= 1, "width_step", "must be >= 1")
        if self.min_aspect is not None:
            _check(
                isinstance(self.min_aspect, (int, float))
                and math.isfinite(self.min_aspect)
                and 0 < self.min_aspect * shape[1] <= self.max_width,
                "min_aspect",
                f"must be a number > 0 whose stretched width stays within max_width {self.max_width}",
            )


@dataclass(frozen=True)
class KeepKeysOp:
    """``KeepKeys``: PaddleOCR's output selection; crnn always keeps image and label."""

    keep_keys: list[str] = ("image", "label", "length")


TRANSFORMS: dict[str, type] = {
    "DecodeImage": DecodeImageOp,
    "CTCLabelEncode": LabelEncodeOp,
    "RecAug": RecAugOp,
    "RecResizeImg": RecResizeImgOp,
    "KeepKeys": KeepKeysOp,
}

DATASET_KINDS = ("SimpleDataSet", "LMDBDataSet", "SynthDataSet", "MixDataSet")


@dataclass(frozen=True)
class DatasetConfig:
    """``Train.dataset`` / ``Eval.dataset``. PaddleOCR kinds plus ours: SynthDataSet, MixDataSet."""

    name: str = "SimpleDataSet"  # SimpleDataSet | LMDBDataSet | SynthDataSet | MixDataSet
    data_dir: str | None = None  # image root (SimpleDataSet) or the folder holding LMDBs (LMDBDataSet)
    label_file_list: list[str] = ()  # SimpleDataSet: "path<TAB>label" files
    ratio_list: float | list[float] = 1.0  # share of each label file per epoch; MixDataSet: of each child
    delimiter: str = "\t"  # SimpleDataSet: path/label separator
    transforms: list[dict[str, Any]] = ()  # PaddleOCR transform list (see TRANSFORMS); parsed by config.py
    augment: bool = True  # ours: false switches off this dataset's RecAug without editing the list
    # SynthDataSet
    size: int = 0  # samples per epoch (eval: the held-apart set size); MixDataSet: epoch size, 0 = derived
    seed: int | None = None  # synthetic seed; None = Global.seed (train) or a distinct one (eval)
    synth: dict[str, Any] = field(default_factory=dict)  # options for crnn_cli.synth's renderer config
    # MixDataSet
    datasets: list[DatasetConfig] = ()  # children mixed by ratio_list
    # PaddleOCR keys accepted for compatibility
    ext_op_transform_idx: Any = None
    do_shuffle: Any = None
    ds_width: Any = None

    def __post_init__(self) -> None:
        _one_of(self.name, DATASET_KINDS, "name")
        _check(self.size >= 0, "size", "must be >= 0")
        ratios = self.ratio_list if isinstance(self.ratio_list, tuple) else (self.ratio_list,)
        _check(all(r >= 0 for r in ratios), "ratio_list", "ratios must be >= 0")
        if self.name == "SimpleDataSet":
            _check(
                bool(self.label_file_list), "label_file_list", "SimpleDataSet needs at least one label file"
            )
            if isinstance(self.ratio_list, tuple):
                _check(
                    len(self.ratio_list) in (1, len(self.label_file_list)),
                    "ratio_list",
                    f"needs one ratio per label file ({len(self.label_file_list)}), got {len(self.ratio_list)}",
                )
        elif self.name == "LMDBDataSet":
            _check(self.data_dir is not None, "data_dir", "LMDBDataSet needs the folder holding the LMDBs")
        elif self.name == "SynthDataSet":
            _check(self.size >= 1, "size", "SynthDataSet needs size >= 1 (samples per epoch)")
        elif self.name == "MixDataSet":
            _check(bool(self.datasets), "datasets", "MixDataSet needs child datasets")
            _check(
                isinstance(self.ratio_list, tuple) and len(self.ratio_list) == len(self.datasets),
                "ratio_list",
                f"MixDataSet needs one ratio per child dataset ({len(self.datasets)})",
            )
            _check(sum(self.ratio_list) > 0, "ratio_list", "at least one ratio must be > 0")
        for i, item in enumerate(self.transforms):
            _check(
                len(item) == 1, f"transforms[{i}]", "each transform is a one-key mapping {Name: {options}}"
            )

    def ratios(self, n: int) -> tuple[float, ...]:
        """ratio_list spread to ``n`` entries (a single number applies to all)."""
        if isinstance(self.ratio_list, tuple):
            return self.ratio_list if len(self.ratio_list) == n else self.ratio_list * n
        return (float(self.ratio_list),) * n


@dataclass(frozen=True)
class LoaderConfig:
    """``Train.loader`` / ``Eval.loader``."""

    batch_size_per_card: int = 256  # per process (per GPU / DDP rank)
    num_workers: int = 4  # data-loading processes; 0 = load in the training process
    shuffle: bool = True
    drop_last: bool = True
    use_shared_memory: Any = None  # PaddleOCR key; accepted
    prefetch_factor: int = 2  # ours: tasks (batches, or chunks of bucket_batches) each worker prepares ahead
    # ours, dynamic width only: a worker loads this many batches at once and regroups them by width, so
    # a batch pads to a near neighbour's width, not to the widest crop of a random draw; 1 = no regrouping
    bucket_batches: int = 8

    def __post_init__(self) -> None:
        _check(self.batch_size_per_card >= 1, "batch_size_per_card", "must be >= 1")
        _check(self.bucket_batches >= 1, "bucket_batches", "must be >= 1 (1 = batches as drawn)")
        _check(self.num_workers >= 0, "num_workers", "must be >= 0")
        _check(self.prefetch_factor >= 1, "prefetch_factor", "must be >= 1")


@dataclass(frozen=True)
class SplitConfig:
    """``Train`` or ``Eval``: a dataset and how to load it."""

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)


@dataclass(frozen=True)
class PostProcessConfig:
    """``PostProcess``: greedy CTC decoding (the only one a CRNN uses in PaddleOCR)."""

    name: str = "CTCLabelDecode"

    def __post_init__(self) -> None:
        _one_of(self.name, ("CTCLabelDecode",), "name")


@dataclass(frozen=True)
class MetricConfig:
    """``Metric``: PaddleOCR's RecMetric (accuracy with spaces removed, normalised edit distance)."""

    name: str = "RecMetric"
    main_indicator: str = "acc"  # which number picks the best checkpoint: acc or norm_edit_dis
    is_filter: bool = False  # compare lowercased [0-9a-z] only

    def __post_init__(self) -> None:
        _one_of(self.name, ("RecMetric",), "name")
        _one_of(self.main_indicator, ("acc", "norm_edit_dis"), "main_indicator")


@dataclass(frozen=True)
class DistillationConfig:
    """``Distillation`` (ours): a teacher recognizer's per-frame probabilities as soft targets on the
    crops of some real label files, read once before training, or (``online``) a crnn checkpoint run
    beside the student on every training batch (see crnn_torch/distill.py)."""

    teacher: str = ""  # a model crnn reads (.onnx, .xml, a converted PaddleOCR model); online: a crnn .pt
    label_files: list[str] = ()  # which of the SimpleDataSet label files of Train.dataset to distil
    # The teacher (a crnn checkpoint with the student's dictionary and frames) reads each training batch
    # as the student sees it, rendered and augmented crops included; label_files and agree_only unused.
    online: bool = False
    weight: float = 1.0  # the KL term's weight beside the CTC loss
    temperature: float = 1.0  # softens both distributions (the loss is scaled by its square)
    agree_only: bool = True  # no target for a crop the teacher reads otherwise than its label
    frames: str = "all"  # all: KL on every covered frame; agree: only where both emit the same symbol
    backend: str | None = None  # the teacher's backend; None = the fastest that opens it
    dictionary: str | None = None  # the teacher's dictionary, when its files do not carry one
    use_space_char: bool | None = None  # with dictionary: the teacher has a space class

    def __post_init__(self) -> None:
        _check(bool(self.teacher), "teacher", "name the teacher model")
        _check(
            self.online or bool(self.label_files), "label_files",
            "name at least one label file of Train.dataset (or set online: true)",
        )  # fmt: skip
        _check(self.weight >= 0, "weight", "must be >= 0")
        _check(self.temperature > 0, "temperature", "must be > 0")
        _one_of(self.frames, ("all", "agree"), "frames")


@dataclass(frozen=True)
class TrainConfig:
    """A whole training config."""

    Global: GlobalConfig = field(default_factory=GlobalConfig)
    Architecture: ArchitectureConfig = field(default_factory=ArchitectureConfig)
    Loss: LossConfig = field(default_factory=LossConfig)
    Optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    PostProcess: PostProcessConfig = field(default_factory=PostProcessConfig)
    Metric: MetricConfig = field(default_factory=MetricConfig)
    Train: SplitConfig | None = None  # required to train; optional so a config can describe a model alone
    Eval: SplitConfig | None = None  # no Eval section: no evaluation, best = latest
    Distillation: DistillationConfig | None = None  # ours: soft targets from a teacher
