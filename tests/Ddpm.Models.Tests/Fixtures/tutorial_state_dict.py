"""Writes the state-dict keys and shapes of the U-Net of "The Annotated Diffusion Model".

PyTorch cannot be installed on the machines this project is built on, so this file reproduces the
tutorial's module definitions (Unet, ResnetBlock, Block, WeightStandardizedConv2d, Attention,
LinearAttention, PreNorm, Residual, Downsample, Upsample) line for line on a tiny stand-in for
torch.nn that records each parameter's name and shape in PyTorch's registration order (own
parameters first, then children in the order they were assigned). Forward passes are omitted.

    python3 tutorial_state_dict.py > tutorial-fashion-mnist.state-dict.txt
"""
from functools import partial


class Module:
    def __init__(self):
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_children", {})

    def __setattr__(self, name, value):
        if isinstance(value, Module):
            self._children[name] = value
        object.__setattr__(self, name, value)

    def param(self, name, shape):
        self._params[name] = tuple(shape)

    def state_dict(self, prefix=""):
        for name, shape in self._params.items():
            yield prefix + name, shape
        for name, child in self._children.items():
            yield from child.state_dict(prefix + name + ".")


class Conv2d(Module):
    def __init__(self, dim_in, dim_out, kernel, padding=0, bias=True):
        super().__init__()
        self.param("weight", (dim_out, dim_in, kernel, kernel))
        if bias:
            self.param("bias", (dim_out,))


class Linear(Module):
    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.param("weight", (dim_out, dim_in))
        self.param("bias", (dim_out,))


class GroupNorm(Module):
    def __init__(self, groups, channels):
        super().__init__()
        self.param("weight", (channels,))
        self.param("bias", (channels,))


class NoParams(Module):
    def __init__(self, *args, **kwargs):
        super().__init__()


SiLU = GELU = Identity = Rearrange = UpsampleNearest = SinusoidalPositionEmbeddings = NoParams


class ModuleList(Module):
    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, m):
        self._children[str(len(self._children))] = m


Sequential = lambda *modules: ModuleList(modules)
WeightStandardizedConv2d = Conv2d
exists = lambda x: x is not None
default = lambda val, d: val if exists(val) else d


# ---- the tutorial's definitions ----
class Residual(Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn


def Upsample(dim, dim_out=None):
    return Sequential(UpsampleNearest(scale_factor=2, mode="nearest"), Conv2d(dim, default(dim_out, dim), 3, padding=1))


def Downsample(dim, dim_out=None):
    return Sequential(Rearrange("b c (h p1) (w p2) -> b (c p1 p2) h w", p1=2, p2=2), Conv2d(dim * 4, default(dim_out, dim), 1))


class Block(Module):
    def __init__(self, dim, dim_out, groups=8):
        super().__init__()
        self.proj = WeightStandardizedConv2d(dim, dim_out, 3, padding=1)
        self.norm = GroupNorm(groups, dim_out)
        self.act = SiLU()


class ResnetBlock(Module):
    def __init__(self, dim, dim_out, *, time_emb_dim=None, groups=8):
        super().__init__()
        self.mlp = Sequential(SiLU(), Linear(time_emb_dim, dim_out * 2)) if exists(time_emb_dim) else None
        self.block1 = Block(dim, dim_out, groups=groups)
        self.block2 = Block(dim_out, dim_out, groups=groups)
        self.res_conv = Conv2d(dim, dim_out, 1) if dim != dim_out else Identity()


class Attention(Module):
    def __init__(self, dim, heads=4, dim_head=32):
        super().__init__()
        hidden_dim = dim_head * heads
        self.to_qkv = Conv2d(dim, hidden_dim * 3, 1, bias=False)
        self.to_out = Conv2d(hidden_dim, dim, 1)


class LinearAttention(Module):
    def __init__(self, dim, heads=4, dim_head=32):
        super().__init__()
        hidden_dim = dim_head * heads
        self.to_qkv = Conv2d(dim, hidden_dim * 3, 1, bias=False)
        self.to_out = Sequential(Conv2d(hidden_dim, dim, 1), GroupNorm(1, dim))


class PreNorm(Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.fn = fn
        self.norm = GroupNorm(1, dim)


class Unet(Module):
    def __init__(self, dim, init_dim=None, out_dim=None, dim_mults=(1, 2, 4, 8), channels=3, self_condition=False, resnet_block_groups=4):
        super().__init__()
        self.channels = channels
        input_channels = channels * (2 if self_condition else 1)
        init_dim = default(init_dim, dim)
        self.init_conv = Conv2d(input_channels, init_dim, 1, padding=0)
        dims = [init_dim, *map(lambda m: dim * m, dim_mults)]
        in_out = list(zip(dims[:-1], dims[1:]))
        block_klass = partial(ResnetBlock, groups=resnet_block_groups)
        time_dim = dim * 4
        self.time_mlp = Sequential(SinusoidalPositionEmbeddings(dim), Linear(dim, time_dim), GELU(), Linear(time_dim, time_dim))
        self.downs = ModuleList([])
        self.ups = ModuleList([])
        num_resolutions = len(in_out)
        for ind, (dim_in, dim_out) in enumerate(in_out):
            is_last = ind >= (num_resolutions - 1)
            self.downs.append(ModuleList([
                block_klass(dim_in, dim_in, time_emb_dim=time_dim),
                block_klass(dim_in, dim_in, time_emb_dim=time_dim),
                Residual(PreNorm(dim_in, LinearAttention(dim_in))),
                Downsample(dim_in, dim_out) if not is_last else Conv2d(dim_in, dim_out, 3, padding=1),
            ]))
        mid_dim = dims[-1]
        self.mid_block1 = block_klass(mid_dim, mid_dim, time_emb_dim=time_dim)
        self.mid_attn = Residual(PreNorm(mid_dim, Attention(mid_dim)))
        self.mid_block2 = block_klass(mid_dim, mid_dim, time_emb_dim=time_dim)
        for ind, (dim_in, dim_out) in enumerate(reversed(in_out)):
            is_last = ind == (len(in_out) - 1)
            self.ups.append(ModuleList([
                block_klass(dim_out + dim_in, dim_out, time_emb_dim=time_dim),
                block_klass(dim_out + dim_in, dim_out, time_emb_dim=time_dim),
                Residual(PreNorm(dim_out, LinearAttention(dim_out))),
                Upsample(dim_out, dim_in) if not is_last else Conv2d(dim_out, dim_in, 3, padding=1),
            ]))
        self.out_dim = default(out_dim, channels)
        self.final_res_block = block_klass(dim * 2, dim, time_emb_dim=time_dim)
        self.final_conv = Conv2d(dim, self.out_dim, 1)


if __name__ == "__main__":
    # The tutorial's Fashion-MNIST model: Unet(dim=image_size, channels=channels, dim_mults=(1, 2, 4)).
    model = Unet(dim=28, channels=1, dim_mults=(1, 2, 4))
    total = 0
    for key, shape in model.state_dict():
        n = 1
        for s in shape:
            n *= s
        total += n
        print(f"{key} [{', '.join(map(str, shape))}]")
    print(f"# parameters: {total}")
