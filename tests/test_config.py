"""Training configs: PaddleOCR's layout parses, mistakes name their key and file, -o overrides work."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from crnn_torch.config import (
    augment_op,
    config_from_dict,
    load_config,
    parse_override,
    resize_op,
    resolve_arch,
    resolve_config_path,
    shipped_configs,
    to_plain,
)
from crnn_torch.config_schema import RecAugOp, RecResizeImgOp

from crnn_cli.core.errors import ConfigError

# A config as PaddleOCR's docs and configs/rec write it (key for key), with a Cosine/warmup schedule,
# SimpleDataSet with two label files and ratios, and the older RecAug switches.
PADDLE_STYLE = textwrap.dedent(
    """\
    Global:
      use_gpu: True
      epoch_num: 72
      log_smooth_window: 20
      print_batch_step: 10
      save_model_dir: ./output/rec/r34_vd_none_bilstm_ctc/
      save_epoch_step: 3
      eval_batch_step: [0, 2000]
      cal_metric_during_train: True
      pretrained_model:
      checkpoints:
      save_inference_dir:
      use_visualdl: False
      infer_img: doc/imgs_words_en/word_10.png
      character_dict_path:
      max_text_length: 25
      infer_mode: False
      use_space_char: False
      save_res_path: ./output/rec/predicts_r34_vd_none_bilstm_ctc.txt
    Optimizer:
      name: Adam
      beta1: 0.9
      beta2: 0.999
      lr:
        name: Cosine
        learning_rate: 0.001
        warmup_epoch: 2
      regularizer:
        name: 'L2'
        factor: 0.00004
    Architecture:
      model_type: rec
      algorithm: CRNN
      Transform:
      Backbone:
        name: ResNet
        layers: 34
      Neck:
        name: SequenceEncoder
        encoder_type: rnn
        hidden_size: 256
      Head:
        name: CTCHead
        fc_decay: 0
    Loss:
      name: CTCLoss
    PostProcess:
      name: CTCLabelDecode
    Metric:
      name: RecMetric
      main_indicator: acc
    Train:
      dataset:
        name: SimpleDataSet
        data_dir: ./train_data/
        label_file_list: ["./train_data/a.txt", "./train_data/b.txt"]
        ratio_list: [1.0, 0.5]
        transforms:
          - DecodeImage: # load image
              img_mode: BGR
              channel_first: False
          - RecAug:
              use_tia: False
              aug_prob: 0.3
          - CTCLabelEncode: # Class handling label
          - RecResizeImg:
              image_shape: [3, 32, 100]
          - KeepKeys:
              keep_keys: ['image', 'label', 'length'] # dataloader will return list in this order
      loader:
        shuffle: True
        batch_size_per_card: 256
        drop_last: True
        num_workers: 8
        use_shared_memory: False
    Eval:
      dataset:
        name: LMDBDataSet
        data_dir: ./train_data/data_lmdb_release/validation/
        transforms:
          - DecodeImage:
              img_mode: BGR
              channel_first: False
          - CTCLabelEncode:
          - RecResizeImg:
              image_shape: [3, 32, 100]
          - KeepKeys:
              keep_keys: ['image', 'label', 'length']
      loader:
        shuffle: False
        drop_last: False
        batch_size_per_card: 256
        num_workers: 4
    """
)


@pytest.fixture
def paddle_yml(tmp_path: Path) -> Path:
    path = tmp_path / "rec_r34_vd_none_bilstm_ctc.yml"
    path.write_text(PADDLE_STYLE, encoding="utf-8")
    return path


def test_paddle_layout_parses(paddle_yml: Path) -> None:
    cfg = load_config(paddle_yml)
    assert cfg.Global.epoch_num == 72
    assert cfg.Global.eval_start_interval == (0, 2000)
    assert cfg.Global.character_dict_path is None and cfg.Global.max_text_length == 25
    assert cfg.Optimizer.name == "Adam" and (cfg.Optimizer.beta1, cfg.Optimizer.beta2) == (0.9, 0.999)
    assert cfg.Optimizer.lr.name == "Cosine" and cfg.Optimizer.lr.warmup_epoch == 2.0
    assert cfg.Optimizer.regularizer is not None and cfg.Optimizer.regularizer.factor == pytest.approx(4e-5)
    assert resolve_arch(cfg.Architecture) == ("rec_r34_vd_none_bilstm_ctc", {"hidden_size": 256})
    train = cfg.Train.dataset
    assert train.name == "SimpleDataSet" and train.ratios(2) == (1.0, 0.5)
    assert train.label_file_list == ("./train_data/a.txt", "./train_data/b.txt")
    assert resize_op(train) == RecResizeImgOp(image_shape=(3, 32, 100))
    aug = augment_op(train)
    assert isinstance(aug, RecAugOp)
    probs = aug.probabilities()
    assert probs["tia"] == 0.0 and probs["blur"] == 0.3  # use_tia: False, aug_prob: 0.3
    assert cfg.Train.loader.batch_size_per_card == 256 and cfg.Train.loader.drop_last
    assert cfg.Eval is not None and cfg.Eval.dataset.name == "LMDBDataSet"
    assert not cfg.Eval.loader.shuffle


@pytest.mark.parametrize("name", ["rec_mv3_none_bilstm_ctc", "rec_r34_vd_none_bilstm_ctc", "crnn_default"])
def test_shipped_configs_load(name: str) -> None:
    assert name in shipped_configs()
    cfg = load_config(name)
    arch, kwargs = resolve_arch(cfg.Architecture)
    assert arch == name
    if name == "rec_mv3_none_bilstm_ctc":
        assert kwargs == {"hidden_size": 96, "scale": 0.5}
    if name == "crnn_default":
        assert cfg.Global.character_dict_path == "en" and cfg.Global.use_space_char
        op = resize_op(cfg.Train.dataset)
        assert op is not None and op.dynamic_width and op.image_shape[1] == 32
        kinds = [d.name for d in cfg.Train.dataset.datasets]
        assert kinds == ["SynthDataSet", "SimpleDataSet"]
    else:
        assert resize_op(cfg.Train.dataset) == RecResizeImgOp(image_shape=(3, 32, 100))


def test_shipped_config_is_paddleocr_layout() -> None:
    """The shipped PaddleOCR configs use only PaddleOCR's own keys (they run in PaddleOCR unchanged)."""
    path = resolve_config_path("rec_mv3_none_bilstm_ctc")
    raw = yaml.safe_load(path.read_text("utf-8"))
    assert set(raw) == {
        "Global",
        "Optimizer",
        "Architecture",
        "Loss",
        "PostProcess",
        "Metric",
        "Train",
        "Eval",
    }
    assert raw["Architecture"]["Backbone"] == {"name": "MobileNetV3", "scale": 0.5, "model_name": "large"}
    for ours in ("seed", "max_steps", "amp", "ema", "grad_clip"):
        assert ours not in raw["Global"]


def test_unknown_key_names_path_and_file(paddle_yml: Path) -> None:
    paddle_yml.write_text(PADDLE_STYLE.replace("  epoch_num: 72", "  epoch_nmu: 72"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(paddle_yml)
    message = str(info.value)
    assert message.startswith("Global.epoch_nmu: unknown key")
    assert "did you mean 'epoch_num'" in message
    assert str(paddle_yml) in message


def test_unknown_nested_key_and_transform(paddle_yml: Path) -> None:
    text = PADDLE_STYLE.replace("    hidden_size: 256", "    hidden_sise: 256")
    paddle_yml.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^Architecture\.Neck\.hidden_sise: unknown key"):
        load_config(paddle_yml)
    text = PADDLE_STYLE.replace("      - CTCLabelEncode: # Class", "      - SRLabelEncode: # Class")
    paddle_yml.write_text(text, encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"^Train\.dataset\.transforms\[2\]\.SRLabelEncode: unknown transform"
    ):
        load_config(paddle_yml)


@pytest.mark.parametrize(
    ("old", "new", "path", "expected"),
    [
        ("  epoch_num: 72", "  epoch_num: ten", "Global.epoch_num", "expected an integer, got str 'ten'"),
        ("  use_gpu: True", "  use_gpu: 1", "Global.use_gpu", "expected true/false, got int 1"),
        ("  beta1: 0.9", "  beta1: [0.9]", "Optimizer.beta1", "expected a number"),
        ("    batch_size_per_card: 256\n    drop_last: True", "    batch_size_per_card: 2.5\n    drop_last: True",
         "Train.loader.batch_size_per_card", "expected an integer"),
        ("      image_shape: [3, 32, 100]", "      image_shape: [3, 32, x]",
         "Train.dataset.transforms[3].RecResizeImg.image_shape[2]", "expected an integer"),
        ("  Backbone:\n    name: ResNet", "  Backbone: ResNet\n  Unused:\n    name: ResNet",
         "Architecture.Backbone", "expected a section"),
    ],
)  # fmt: skip
def test_wrong_type_names_key(paddle_yml: Path, old: str, new: str, path: str, expected: str) -> None:
    assert old in PADDLE_STYLE
    paddle_yml.write_text(PADDLE_STYLE.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(paddle_yml)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message
    assert str(paddle_yml) in message


def test_out_of_range_values_name_key(paddle_yml: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"^Optimizer\.beta1: must be in \[0, 1\), got 1.5 \(in override -o"
    ):
        load_config(paddle_yml, ["Optimizer.beta1=1.5"])
    with pytest.raises(ConfigError, match=r"^Optimizer\.lr\.name: must be one of Const, Cosine, Piecewise"):
        load_config(paddle_yml, ["Optimizer.lr.name=Exponential"])
    with pytest.raises(ConfigError, match=r"^Optimizer\.lr\.values: Piecewise needs"):
        load_config(
            paddle_yml,
            ["Optimizer.lr.name=Piecewise", "Optimizer.lr.decay_epochs=[10,20]", "Optimizer.lr.values=[0.1]"],
        )
    with pytest.raises(ConfigError, match=r"^Global\.eval_batch_step: "):
        load_config(paddle_yml, ["Global.eval_batch_step=[0, 0]"])


def test_overrides(paddle_yml: Path) -> None:
    cfg = load_config(
        paddle_yml,
        [
            "Global.epoch_num=3",
            "Global.use_gpu=false",
            "Global.save_model_dir=./out/run=2/",  # '=' inside the value
            "Global.pretrained_model=a=b=c",
            "Optimizer.lr.learning_rate=1e-3",  # YAML 1.1 reads this as a string; a float field takes it
            "Global.ema=true",  # our key, absent from the file
            "Train.dataset.transforms.3.RecResizeImg.image_shape=[3, 32, 320]",  # list index
            "Eval.loader.batch_size_per_card=8",
        ],
    )
    assert cfg.Global.epoch_num == 3 and cfg.Global.use_gpu is False
    assert cfg.Global.save_model_dir == "./out/run=2/"
    assert cfg.Global.pretrained_model == "a=b=c"
    assert cfg.Optimizer.lr.learning_rate == pytest.approx(1e-3)
    assert cfg.Global.ema is True
    assert resize_op(cfg.Train.dataset) == RecResizeImgOp(image_shape=(3, 32, 320))
    assert cfg.Eval is not None and cfg.Eval.loader.batch_size_per_card == 8
    # the file itself is untouched: a fresh load has the old values
    assert load_config(paddle_yml).Global.epoch_num == 72


def test_override_errors_name_the_override(paddle_yml: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"^Global\.epoch_num: expected an integer, got str 'abc' \(in override -o Global\.epoch_num=abc\)",
    ):
        load_config(paddle_yml, ["Global.epoch_num=abc"])
    with pytest.raises(
        ConfigError, match=r"^Global\.epoch_nmu: unknown key.*override -o Global\.epoch_nmu=3"
    ):
        load_config(paddle_yml, ["Global.epoch_nmu=3"])
    with pytest.raises(ConfigError) as err:
        load_config(paddle_yml, ["Global.character_dict_path=nope.txt"])
    assert str(err.value).startswith(
        "Global.character_dict_path: 'nope.txt' is neither a built-in dictionary"
    )
    assert str(err.value).endswith("(in override -o Global.character_dict_path=nope.txt)")
    # A misspelt section: the override made it, so the override is to blame, not the file.
    with pytest.raises(ConfigError) as err:
        load_config(paddle_yml, ["Global.epoch_num=2", "Globl.epoch_num=3"])
    assert str(err.value) == "Globl: unknown key; did you mean 'Global'? (in override -o Globl.epoch_num=3)"
    with pytest.raises(ConfigError, match="must look like Key.sub=value"):
        load_config(paddle_yml, ["Global.epoch_num"])
    with pytest.raises(ConfigError, match="needs a list index"):
        load_config(paddle_yml, ["Train.dataset.transforms.9.RecResizeImg.image_shape=[3,32,320]"])
    with pytest.raises(ConfigError, match="not a section"):
        load_config(paddle_yml, ["Global.epoch_num.x=1"])


def test_parse_override_yaml_typing() -> None:
    assert parse_override("A.b=3") == (["A", "b"], 3)
    assert parse_override("A.b=3.5") == (["A", "b"], 3.5)
    assert parse_override("A.b=[1, 2]") == (["A", "b"], [1, 2])
    assert parse_override("A.b=") == (["A", "b"], None)
    assert parse_override("A.b=x: y: z") == (["A", "b"], "x: y: z")  # invalid YAML stays text


def test_synth_options_checked_at_load(tmp_path: Path) -> None:
    raw = {
        "Train": {
            "dataset": {
                "name": "SynthDataSet",
                "size": 10,
                "synth": {"heigth_range": [32, 32]},
                "transforms": [{"RecResizeImg": {"image_shape": [3, 32, 100]}}],
            }
        }
    }
    with pytest.raises(
        ConfigError, match=r"^Train\.dataset\.synth\.heigth_range: unknown key; did you mean 'height_range'"
    ):
        config_from_dict(raw)
    raw["Train"]["dataset"]["synth"] = {"p_blur": 2.0}
    with pytest.raises(ConfigError, match=r"^Train\.dataset\.synth: .*p_blur"):
        config_from_dict(raw)


def test_mix_needs_a_ratio_per_child() -> None:
    child = {"name": "SynthDataSet", "size": 5}
    raw = {"Train": {"dataset": {"name": "MixDataSet", "datasets": [child, child], "ratio_list": [1.0]}}}
    with pytest.raises(
        ConfigError, match=r"^Train\.dataset\.ratio_list: MixDataSet needs one ratio per child"
    ):
        config_from_dict(raw)


def test_architecture_mapping_errors() -> None:
    raw = {"Architecture": {"Backbone": {"name": "MobileNetV3", "model_name": "small"}}}
    with pytest.raises(ConfigError, match=r"Architecture\.Backbone\.model_name: only 'large'"):
        resolve_arch(config_from_dict(raw).Architecture)
    raw = {"Architecture": {"Backbone": {"name": "SVTRNet"}}}
    with pytest.raises(ConfigError, match=r"Architecture\.Backbone\.name: 'SVTRNet' is not a CRNN backbone"):
        resolve_arch(config_from_dict(raw).Architecture)
    raw = {"Architecture": {"arch": "crnn_default", "arch_kwargs": {"hidden_size": 16}}}
    assert resolve_arch(config_from_dict(raw).Architecture) == ("crnn_default", {"hidden_size": 16})


def test_plain_round_trip(paddle_yml: Path) -> None:
    """What a checkpoint stores (to_plain) rebuilds the same config (resume without -c)."""
    cfg = load_config(paddle_yml, ["Global.seed=5", "Global.amp=bf16"])
    again = config_from_dict(to_plain(cfg))
    assert again == cfg
    assert again.Global.amp_mode == "bf16"


def test_missing_config_is_named() -> None:
    with pytest.raises(ConfigError, match="neither a file nor a shipped config"):
        load_config("no_such_config.yml")


def test_min_aspect_reaches_the_training_preprocessing(paddle_yml: Path) -> None:
    from crnn_torch.data import preprocess_config

    key = "Train.dataset.transforms.3.RecResizeImg"
    cfg = load_config(paddle_yml, [f"{key}.dynamic_width=true", f"{key}.min_aspect=2"])
    pre = preprocess_config(cfg.Train.dataset)
    assert pre.min_aspect == 2.0 and pre.sizes(32, 20)[0] == 64
    assert preprocess_config(load_config(paddle_yml).Train.dataset).min_aspect is None
    with pytest.raises(ConfigError, match=r"RecResizeImg\.min_aspect: must be a number > 0"):
        load_config(paddle_yml, [f"{key}.min_aspect=0"])
    with pytest.raises(ConfigError, match=r"RecResizeImg\.min_aspect: "):
        load_config(paddle_yml, [f"{key}.min_aspect=100"])  # 3200 px: beyond max_width
