"""Build the notebooks from the cells below and execute them, saving their outputs.

Run from the repository root:  python notebooks/build.py   (needs the [test] extra: torch, nbclient, ipykernel)
The notebooks are committed with their outputs; the test suite executes them again (nbmake).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent

SETUP = """\
import numpy as np
import torch
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

import fnnet
from fnnet import torch_ref
from fnnet.compare import from_torch, from_runs, depth_schedule
from fnnet.data import Sizes
from fnnet.notebook import side_by_side, plot_pair, parity_lines

torch.set_num_threads(2)
sizes = Sizes()  # N=64, D_in=1000, H=100, D_out=10: the tutorial's
print(sizes)"""


def same_start(lesson: str, run: str, lr: str, extra: str = "") -> str:
    return f"""\
lesson = "{lesson}"
start, x, y = torch_ref.initial(lesson, sizes, seed=0)   # drawn the tutorial's way
params = from_torch(lesson, start)                      # the same weights, for JAX (before torch changes them)
data = (np.asarray(x), np.asarray(y))
{extra}ref = torch_ref.{run}(start, x, y, steps=500, lr={lr}{", depths=depths" if extra else ""})
ours = fnnet.fit(lesson, params=params, data=data, seed=0)
comparison = from_runs(lesson, ref, ours, params, data, seed=0)
print(parity_lines(comparison))
plot_pair(comparison);"""


def md(en: str, zh: str) -> tuple[str, str]:
    return ("markdown", en.strip() + "\n\n---\n\n" + zh.strip())


def code(src: str) -> tuple[str, str]:
    return ("code", src.strip())


SIDE = md("## The two versions side by side\nLeft: the tutorial's code as fnnet runs it for the comparison "
          "(`fnnet.torch_ref`). Right: the fnnet code that replaces it.",
          "## 两种写法并排\n左边：教程原来的写法（`fnnet.torch_ref`，用于对比）。右边：fnnet 中对应的 JAX 代码。")
START = md("## Both from the same start\nPyTorch draws the weights and the data; `from_torch` hands the very same "
           "numbers to JAX. Then each framework trains 500 steps, and we compare every loss and the gradients of "
           "step 0.",
           "## 从同一个起点出发\n由 PyTorch 生成权重和数据，`from_torch` 把完全相同的数值交给 JAX。两边各训练 500 步，"
           "然后逐步比较损失，并比较第 0 步的梯度。")

NOTEBOOKS: dict[str, list] = {}

NOTEBOOKS["01_numpy"] = [
    md("# 01 · Warm-up: NumPy\nThe network is `relu(x @ w1) @ w2`, the loss is the sum of squared errors, and "
       "both the forward and the backward pass are written by hand. This lesson is the reference every later "
       "one is checked against: fnnet's `numpy` lesson computes in NumPy float64, with the same backward "
       "function (`fnnet.functional.manual_grads`) that the JAX lessons use.",
       "# 01 · 热身：NumPy\n网络是 `relu(x @ w1) @ w2`，损失是误差平方和，前向和反向传播都是手写的。"
       "这一课是后面所有课程的参照：fnnet 的 `numpy` 课用 NumPy float64 计算，所用的反向传播函数"
       "（`fnnet.functional.manual_grads`）和 JAX 各课完全相同。"),
    code(SETUP),
    SIDE,
    code("side_by_side(torch_ref.run_numpy, fnnet.functional.manual_grads, "
         "'the tutorial (NumPy, in place)', 'fnnet (one function, NumPy or JAX arrays)')"),
    START,
    code(same_start("numpy", "run_numpy", "1e-6")),
    md("## What changed, and why\n- The backward pass returns `(loss, grads)` instead of updating `w1`, `w2` in "
       "place: a pure function, so the same code runs on NumPy arrays here and under `jax.jit` later.\n"
       "- `grad_h[h < 0] = 0` (in-place masking) becomes `where(h < 0, 0, grad_h)`, which makes a new array.\n"
       "- Both sides are float64 NumPy, so the curves agree to the last bits.",
       "## 变化及原因\n- 反向传播返回 `(loss, grads)`，而不是原地修改 `w1`、`w2`：这是纯函数，所以同一段代码这里跑在 "
       "NumPy 数组上，后面又能在 `jax.jit` 下运行。\n- `grad_h[h < 0] = 0`（原地置零）换成 "
       "`where(h < 0, 0, grad_h)`，它生成一个新数组。\n- 两边都是 float64 的 NumPy，所以曲线几乎逐位一致。"),
    md("## The learner's question: what does `grad_h[h < 0] = 0` do?\nWhere the input of the ReLU was negative, "
       "the ReLU output did not depend on it, so the gradient there is zero; everywhere else it passes unchanged. "
       "On a 2×3 example:",
       "## 笔记里的问题：`grad_h[h < 0] = 0` 是什么意思？\nReLU 的输入为负的位置，输出与它无关，所以那里的梯度为 0；"
       "其它位置梯度原样通过。用一个 2×3 的小例子看："),
    code("""\
h = np.array([[-1.0, 0.0, 2.0], [3.0, -0.5, 1.0]])
grad_h = np.array([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]])
masked = grad_h.copy(); masked[h < 0] = 0          # the tutorial's way, in place
print(masked)
print(np.where(h < 0, 0, grad_h))                  # fnnet's way: a new array, the same numbers
# at exactly 0 the gradient passes (as in the tutorial and in torch.clamp)"""),
    md("And the shapes the learner printed, at the tiny sizes the notes used (N, D_in, H, D_out = 4, 10, 6, 3):",
       "以及笔记里打印的各个形状（笔记用的小尺寸 N, D_in, H, D_out = 4, 10, 6, 3）："),
    code("""\
tiny = Sizes(4, 10, 6, 3)
rng = np.random.default_rng(0)
xs, ys = rng.standard_normal((4, 10)), rng.standard_normal((4, 3))
w = {"w1": rng.standard_normal((10, 6)), "w2": rng.standard_normal((6, 3))}
h = xs @ w["w1"]
loss, grads = fnnet.functional.manual_grads(w, xs, ys)
print("h", h.shape, " y_pred", (np.maximum(h, 0) @ w["w2"]).shape, " loss", np.shape(loss),
      " grad_w1", grads["w1"].shape, " grad_w2", grads["w2"].shape)"""),
]

NOTEBOOKS["02_tensors"] = [
    md("# 02 · Tensors\nThe same network and the same hand-written backward, now on arrays that can live on a "
       "GPU or TPU. In PyTorch that is `torch.tensor`; in JAX it is `jax.numpy`, and the whole training loop is "
       "compiled with `jit`.",
       "# 02 · 张量\n同样的网络、同样手写的反向传播，只是换成可以放在 GPU/TPU 上的数组。PyTorch 里是 "
       "`torch.tensor`；JAX 里是 `jax.numpy`，并且整个训练循环用 `jit` 编译。"),
    code(SETUP),
    SIDE,
    code("side_by_side(torch_ref.run_tensors, fnnet.functional.manual_grads)"),
    START,
    code(same_start("tensors", "run_tensors", "1e-6")),
    md("## What changed, and why\n- `x.mm(w1)` is `x @ w1`; `h.clamp(min=0)` is `relu(h)`; `.t()` is `.T`.\n"
       "- No `clone()`: JAX arrays are immutable, so nothing can change `grad_h_relu` behind our back.\n"
       "- No `.item()` per step: fnnet keeps the losses on the device inside the compiled loop and reads them "
       "once per chunk of steps.\n- Both sides are float32, so the last digits differ by rounding; the numbers "
       "above are within the tolerances.",
       "## 变化及原因\n- `x.mm(w1)` 写成 `x @ w1`；`h.clamp(min=0)` 就是 `relu(h)`；`.t()` 写成 `.T`。\n"
       "- 不需要 `clone()`：JAX 数组不可变，没有东西会在背后改掉 `grad_h_relu`。\n"
       "- 不需要每步 `.item()`：fnnet 在编译好的循环里把损失留在设备上，每一段步数才读一次。\n"
       "- 两边都是 float32，最后几位因舍入而不同；上面的数字都在容差以内。"),
    md("## The learner's note: \"a tensor is numpy that runs on a GPU\"\nAlmost. A JAX array also knows which "
       "device holds it, and `float(...)` (like torch's `.item()`) copies one number back to the host, which waits "
       "for the device: that is why the compiled loop avoids it per step.",
       "## 笔记里的理解：\"tensor 就是能在 GPU 上跑的 numpy\"\n差不多。JAX 数组还知道自己在哪个设备上；"
       "`float(...)`（相当于 torch 的 `.item()`）会把一个数拷回主机，并等待设备算完，所以编译好的循环不会每步都这么做。"),
    code("""\
a = jnp.ones((2, 3))
print(jax.devices(), a.devices())
print(type(a @ a.T), float((a @ a.T)[0, 0]))"""),
]

NOTEBOOKS["03_autograd"] = [
    md("# 03 · Autograd\nNo more hand-written backward: the gradient of the loss comes from the framework. PyTorch "
       "records the operations on tensors with `requires_grad=True` and `loss.backward()` fills `.grad`; JAX "
       "transforms the loss *function*: `jax.value_and_grad(loss)(params, ...)` returns the loss and the gradients.",
       "# 03 · 自动求导\n不再手写反向传播，梯度由框架计算。PyTorch 记录 `requires_grad=True` 的张量上的运算，"
       "`loss.backward()` 把梯度写进 `.grad`；JAX 变换的是损失*函数*：`jax.value_and_grad(loss)(params, ...)` "
       "直接返回损失和梯度。"),
    code(SETUP),
    SIDE,
    code("side_by_side(torch_ref._run_autograd, fnnet.lessons.lesson_functions)"),
    START,
    code(same_start("autograd", "run_autograd", "1e-6")),
    md("## What changed, and why\n- `w.requires_grad_()` + `loss.backward()` + `w.grad` becomes one call, "
       "`jax.value_and_grad(loss)`, whose result is the gradient.\n- `with torch.no_grad(): w -= lr * w.grad` "
       "becomes a pure update, `p - lr * g`, mapped over the parameters: there is no graph being recorded, so "
       "there is nothing to switch off.\n- Nothing to zero: see the learner's question below.",
       "## 变化及原因\n- `w.requires_grad_()` + `loss.backward()` + `w.grad` 变成一次调用 `jax.value_and_grad(loss)`，"
       "它的返回值就是梯度。\n- `with torch.no_grad(): w -= lr * w.grad` 变成纯函数式的更新 `p - lr * g`，"
       "对每个参数做一遍：JAX 并不在记录计算图，所以也不需要关掉什么。\n- 不需要清零：见下面的问题。"),
    md("## The learner's question: why zero the gradients every iteration?\nBecause PyTorch *adds* each "
       "`backward()` into `.grad`. Call it twice without zeroing and the gradient doubles. A JAX gradient is a "
       "return value: calling `jax.grad` twice gives the same array twice.",
       "## 笔记里的问题：为什么每轮都要清零梯度？\n因为 PyTorch 的每次 `backward()` 都会*累加*到 `.grad` 上，"
       "不清零就调用两次，梯度就变成两倍。JAX 的梯度是函数的返回值：调用两次 `jax.grad` 得到的是同样的结果。"),
    code("""\
w = torch.tensor([2.0], requires_grad=True)
for _ in range(2):
    (w ** 2).sum().backward()
print("torch .grad after two backward calls:", w.grad.item())   # 8 = 4 + 4

g = jax.grad(lambda w: (w ** 2).sum())
print("jax.grad twice:", g(jnp.array([2.0]))[0], g(jnp.array([2.0]))[0])   # 4 and 4"""),
]

NOTEBOOKS["04_custom_function"] = [
    md("# 04 · Defining a new autograd function\nThe tutorial writes ReLU as a `torch.autograd.Function` with its "
       "own `forward` and `backward`. JAX's counterpart is `jax.custom_vjp`: a forward rule that returns the output "
       "and the *residuals* the backward needs (here the input, like `ctx.save_for_backward(x)`), and a backward "
       "rule that maps the output's gradient to the input's.",
       "# 04 · 自定义自动求导函数\n教程把 ReLU 写成一个 `torch.autograd.Function`，自己实现 `forward` 和 `backward`。"
       "JAX 中对应的是 `jax.custom_vjp`：前向规则返回输出以及反向需要的*残差*（这里是输入，相当于 "
       "`ctx.save_for_backward(x)`），反向规则把输出的梯度映射成输入的梯度。"),
    code(SETUP),
    SIDE,
    code("import inspect\n"
         "side_by_side(torch_ref.MyReLU, inspect.getsource(fnnet.functional.my_relu).split('    \"\"\"')[0] + "
         "'    ...\\n\\n' + inspect.getsource(fnnet.functional._my_relu_fwd) + '\\n' + "
         "inspect.getsource(fnnet.functional._my_relu_bwd) + '\\nmy_relu.defvjp(_my_relu_fwd, _my_relu_bwd)')"),
    START,
    code(same_start("custom_function", "run_custom_function", "1e-6")),
    md("## What changed, and why\n- `ctx.save_for_backward(x)` becomes returning `x` as the residual from the "
       "forward rule; `ctx.saved_tensors` becomes the backward rule's first argument.\n- `grad_output.clone()` and "
       "in-place masking become `where(x < 0, 0, grad_output)`: a new array, so no clone is needed.\n"
       "- The rule at exactly 0 is the tutorial's: the gradient passes. (`jax.nn.relu` gives 0 there and "
       "`jnp.maximum(x, 0)` gives 0.5.)",
       "## 变化及原因\n- `ctx.save_for_backward(x)` 变成前向规则把 `x` 作为残差返回；`ctx.saved_tensors` 变成反向规则的"
       "第一个参数。\n- `grad_output.clone()` 加原地置零，变成 `where(x < 0, 0, grad_output)`：生成新数组，无需 clone。\n"
       "- 在恰好为 0 的地方沿用教程的规则：梯度通过。（`jax.nn.relu` 在 0 处给 0，`jnp.maximum(x, 0)` 给 0.5。）"),
    md("## The learner's note: \"backward turns the output's gradient into the input's\"\nExactly, and "
       "`jax.vjp` lets us call the two halves by hand, just as torch calls `forward` and then `backward`:",
       "## 笔记里的理解：\"backward 就是根据输出的梯度求输入的梯度\"\n正是如此。用 `jax.vjp` 可以手动调用这两半，"
       "就像 torch 先调 `forward` 再调 `backward`："),
    code("""\
xs = jnp.array([-2.0, -0.5, 0.0, 1.5])
out, backward = jax.vjp(fnnet.functional.my_relu, xs)
print("forward :", out)
print("backward:", backward(jnp.array([10.0, 20.0, 30.0, 40.0]))[0])

xt = torch.tensor([-2.0, -0.5, 0.0, 1.5], requires_grad=True)
torch_ref.MyReLU.apply(xt).backward(torch.tensor([10.0, 20.0, 30.0, 40.0]))
print("torch   :", xt.grad)"""),
]

NOTEBOOKS["05_nn"] = [
    md("# 05 · The nn module\nLayers instead of raw weights: `nn.Sequential(Linear, ReLU, Linear)` with biases, and "
       "the loss `MSELoss(reduction='sum')`. fnnet uses flax `nnx.Sequential` with `Linear` layers initialised like "
       "torch's, and trains it functionally: the module is split into a graph and a parameter tree, and the "
       "update is `jax.tree.map(lambda p, g: p - lr * g, params, grads)`.",
       "# 05 · nn 模块\n用层代替裸权重：带偏置的 `nn.Sequential(Linear, ReLU, Linear)`，损失是 "
       "`MSELoss(reduction='sum')`。fnnet 用 flax 的 `nnx.Sequential`，其中 `Linear` 的初始化与 torch 相同，"
       "并以函数式的方式训练：模块被拆成计算图和参数树，更新是 `jax.tree.map(lambda p, g: p - lr * g, params, grads)`。"),
    code(SETUP),
    SIDE,
    code("side_by_side(torch_ref.run_nn, inspect.getsource(fnnet.modules.torch_linear) + '\\n' + "
         "inspect.getsource(fnnet.modules.sequential) + '\\n' + inspect.getsource(fnnet.optimizers.sgd_by_hand))"
         .replace("side_by_side", "import inspect\nside_by_side", 1)),
    START,
    code(same_start("nn", "run_nn", "1e-4")),
    md("## What changed, and why\n- `model.parameters()` becomes a tree of arrays (`nnx.split`), and the update is "
       "one `jax.tree.map` over it instead of a loop with in-place `-=` under `no_grad`.\n- torch's `Linear.weight` "
       "is (out, in); nnx's `kernel` is (in, out). `from_torch` transposes it; nothing else changes.\n"
       "- `model.zero_grad()` disappears: gradients are return values.",
       "## 变化及原因\n- `model.parameters()` 变成一棵数组树（`nnx.split`），更新是对它做一次 `jax.tree.map`，"
       "而不是在 `no_grad` 下循环原地 `-=`。\n- torch 的 `Linear.weight` 形状是 (out, in)，nnx 的 `kernel` 是 "
       "(in, out)。`from_torch` 只做这个转置。\n- `model.zero_grad()` 消失了：梯度是返回值。"),
    md("## The learner's note: \"MSELoss feels like squared error\"\nWith `reduction='sum'` it *is* the sum of "
       "squared errors, the loss of the first lessons (the default, 'mean', divides by the number of elements):",
       "## 笔记里的理解：\"MSELoss 感觉就是平方误差\"\n在 `reduction='sum'` 时它*就是*误差平方和，也就是前几课的损失"
       "（默认的 'mean' 会再除以元素个数）："),
    code("""\
a, b = torch.randn(4, 3), torch.randn(4, 3)
print(torch.nn.MSELoss(reduction="sum")(a, b).item(),
      float(fnnet.functional.sum_squared_error(jnp.asarray(a.numpy()), jnp.asarray(b.numpy()))),
      torch.nn.MSELoss()(a, b).item() * 12)"""),
    md("And the parameters on both sides, name by name:", "两边的参数，逐个对照："),
    code("""\
for name, p in torch_ref.sequential(sizes).named_parameters():
    print(f"torch {name:9s} {tuple(p.shape)}")
print(jax.tree.map(jnp.shape, params))"""),
]

NOTEBOOKS["06_optim"] = [
    md("# 06 · optim\nThe update rule moves into an optimizer: `torch.optim.Adam(model.parameters(), lr=1e-4)` "
       "with `zero_grad()`, `backward()`, `step()`. In fnnet it is `optax.adam(1e-4)`: a pair of pure functions, "
       "`init(params) -> state` and `update(grads, state, params) -> (updates, state)`.",
       "# 06 · optim\n更新规则交给优化器：`torch.optim.Adam(model.parameters(), lr=1e-4)`，配合 `zero_grad()`、"
       "`backward()`、`step()`。fnnet 里用 `optax.adam(1e-4)`：一对纯函数，`init(params) -> state` 和 "
       "`update(grads, state, params) -> (updates, state)`。"),
    code(SETUP),
    SIDE,
    code("side_by_side(inspect.getsource(torch_ref._run_module) + '\\n' + inspect.getsource(torch_ref._optimizer_run)"
         " + '\\nrun_optim = _optimizer_run(lambda params, lr: torch.optim.Adam(params, lr=lr))', "
         "fnnet.train.train_step)".replace("side_by_side", "import inspect\nside_by_side", 1)),
    START,
    code(same_start("optim", "run_optim", "1e-4")),
    md("## What changed, and why\n- The optimizer does not hold the parameters: its state (Adam's moments and step "
       "count) is an explicit value that `train_step` passes in and gets back.\n- `optimizer.step()` mutates; "
       "`optimizer.update` returns the updates, applied with `p + u`.\n- Adam amplifies the last bits of "
       "rounding near its minimum, so the float32 curves separate slowly at the end; `fnnet compare` settles such "
       "cases in float64, where the two agree to about 1e-13.",
       "## 变化及原因\n- 优化器不持有参数：它的状态（Adam 的一阶、二阶矩和步数）是一个显式的值，`train_step` 传入并取回。\n"
       "- `optimizer.step()` 原地修改；`optimizer.update` 返回更新量，再用 `p + u` 应用。\n"
       "- Adam 在接近最小值时会放大舍入误差，所以 float32 曲线在末尾会慢慢分开；`fnnet compare` 会在 float64 下"
       "重新判定，那时两边相差约 1e-13。"),
    md("## The learner's note: \"Adam is linked to the model's parameters\"\nIn optax nothing is linked: the state "
       "is a tree shaped like the parameters, and you can look at it:",
       "## 笔记里的理解：\"Adam 关联了 model 的参数\"\n在 optax 中没有任何\"关联\"：状态是一棵和参数同形状的树，可以直接查看："),
    code("""\
import optax
state = optax.adam(1e-4).init(params)
print(jax.tree.map(jnp.shape, state))"""),
]

NOTEBOOKS["07_custom_module"] = [
    md("# 07 · Custom nn Modules\nA model of your own: `class TwoLayerNet(nn.Module)` with two `Linear` layers and "
       "a `forward`. In flax nnx: `class TwoLayerNet(nnx.Module)` with `__call__`. Trained with plain SGD, it "
       "computes exactly what lesson 05 computes.",
       "# 07 · 自定义 nn 模块\n自己定义模型：`class TwoLayerNet(nn.Module)`，两个 `Linear` 层和一个 `forward`。"
       "在 flax nnx 中是 `class TwoLayerNet(nnx.Module)` 加 `__call__`。用普通 SGD 训练，它和第 05 课算的完全一样。"),
    code(SETUP),
    SIDE,
    code("side_by_side(torch_ref.TwoLayerNet, fnnet.modules.TwoLayerNet)"),
    START,
    code(same_start("custom_module", "run_custom_module", "1e-4")),
    md("## What changed, and why\n- `super().__init__()` is not needed: an `nnx.Module` finds its layers from its "
       "attributes.\n- `forward` is `__call__`; the module holds `nnx.Param`s, and `nnx.split` gives the pure "
       "parameter tree that the compiled loop trains.\n- `torch.optim.SGD` becomes `optax.sgd`: the same update as "
       "lesson 05's hand-written `jax.tree.map`, so fnnet's `nn` and `custom_module` curves are identical.",
       "## 变化及原因\n- 不需要 `super().__init__()`：`nnx.Module` 从属性中找到自己的层。\n"
       "- `forward` 改名为 `__call__`；模块里保存的是 `nnx.Param`，`nnx.split` 得到编译循环要训练的纯参数树。\n"
       "- `torch.optim.SGD` 换成 `optax.sgd`：与第 05 课手写的 `jax.tree.map` 更新一样，所以 fnnet 的 `nn` 和 "
       "`custom_module` 曲线完全相同。"),
    md("## The learner's note: \"remember to call the parent's `__init__`\"\nIn torch that call is what registers "
       "the layers. nnx needs no registration; the module's state is just its attributes:",
       "## 笔记里的提醒：\"记得调用父类的初始化函数\"\n在 torch 里，正是这个调用让子层被注册。nnx 不需要注册，模块的状态就是它的属性："),
    code("""\
from flax import nnx
net = fnnet.modules.TwoLayerNet(Sizes(4, 6, 5, 2), rngs=nnx.Rngs(0))
graphdef, state = nnx.split(net, nnx.Param)
print(jax.tree.map(jnp.shape, nnx.to_pure_dict(state)))
print(fnnet.fit("nn").losses[-1] == fnnet.fit("custom_module").losses[-1])   # lesson 05 and 07 agree"""),
]

NOTEBOOKS["08_control_flow"] = [
    md("# 08 · Control flow and weight sharing\n`DynamicNet` reuses one middle layer 0 to 3 times per forward "
       "pass, the number drawn at random each step. In PyTorch that is a Python `for` loop; under `jit` the depth "
       "is drawn from a JAX key and the branch is chosen with `lax.switch`, which stays differentiable (a "
       "`fori_loop` with a traced bound has no reverse mode). For the comparison both sides use the same depth "
       "schedule.",
       "# 08 · 控制流与权重共享\n`DynamicNet` 每次前向随机地把同一个中间层重复使用 0 到 3 次。PyTorch 里就是一个 Python "
       "`for` 循环；在 `jit` 下，深度由 JAX 的随机 key 生成，用 `lax.switch` 选择分支，仍然可以求导（上界是 traced "
       "值的 `fori_loop` 不支持反向模式）。对比时两边使用同一个深度序列。"),
    code(SETUP),
    SIDE,
    code("side_by_side(torch_ref.DynamicNet, fnnet.modules.DynamicNet)"),
    START,
    code(same_start("control_flow", "run_control_flow", "1e-4",
                    extra="depths = depth_schedule(0, 500)                        # the depth of every step, as fnnet draws it\nprint('depths of the first steps:', depths[:12])\n")),
    md("## What changed, and why\n- `random.randint(0, 3)` becomes `jax.random.randint(key, (), 0, 4)` with the "
       "step's own key, so a run can be replayed and the compiled loop can draw it.\n- The Python loop becomes "
       "`lax.switch` over four branches (depth 0, 1, 2, 3).\n- One subtle difference the comparison found: since "
       "PyTorch 2.0 `zero_grad()` sets gradients to `None`, and SGD skips a parameter whose gradient is `None`. At a "
       "depth-0 step the middle layer gets no gradient, so PyTorch 2 would skip its momentum step; JAX gives a "
       "zero gradient and momentum still moves it, as PyTorch 1.x did when the tutorial was written. The reference "
       "uses `zero_grad(set_to_none=False)` to keep the tutorial's meaning.",
       "## 变化及原因\n- `random.randint(0, 3)` 变成用每一步自己的 key 调用 `jax.random.randint(key, (), 0, 4)`，"
       "因此一次训练可以复现，编译好的循环也能生成它。\n- Python 循环变成四个分支（深度 0、1、2、3）上的 `lax.switch`。\n"
       "- 对比中发现的一个细微差别：自 PyTorch 2.0 起 `zero_grad()` 把梯度设为 `None`，而 SGD 会跳过梯度为 `None` "
       "的参数。深度为 0 的那一步中间层没有梯度，PyTorch 2 会跳过它的动量更新；JAX 给出的是全零梯度，动量仍会推动它，"
       "这与写教程时的 PyTorch 1.x 一致。参考实现用 `zero_grad(set_to_none=False)` 保持教程的原意。"),
    md("## The learner's question: reused twice, is the middle layer updated once or twice?\n**Once**, with the "
       "gradient *summed* over its uses. Below, at depth 2, we compute the gradient of the shared layer, and the "
       "gradient each use would get if the two uses had separate copies of the layer: the shared gradient is the "
       "sum of the two. Then one SGD step moves the parameter once, by `-lr` times that sum.",
       "## 笔记里的问题：中间层被重复用了两次，参数是更新一次还是两次？\n**一次**，用的是各次使用的梯度之*和*。"
       "下面在深度 2 时，计算共享层的梯度，再假设两次使用各有一份独立的拷贝，分别求梯度：共享层的梯度正好是两者之和。"
       "然后一步 SGD 只把参数移动一次，移动量是 `-lr` 乘以这个和。"),
    code("""\
from fnnet.functional import relu, sum_squared_error

def unrolled(p, middles, x):            # DynamicNet written out, one copy of the middle layer per use
    h = relu(x @ p["input_linear"]["kernel"] + p["input_linear"]["bias"][None, :])
    for m in middles:
        h = relu(h @ m["kernel"] + m["bias"][None, :])
    return h @ p["output_linear"]["kernel"] + p["output_linear"]["bias"][None, :]

p = jax.tree.map(jnp.asarray, params)
xj, yj = jnp.asarray(data[0]), jnp.asarray(data[1])
shared = jax.grad(lambda p: sum_squared_error(unrolled(p, [p["middle_linear"]] * 2, xj), yj))(p)["middle_linear"]["kernel"]
use1, use2 = jax.grad(lambda ms: sum_squared_error(unrolled(p, ms, xj), yj))([p["middle_linear"]] * 2)
print("gradient of use 1, of use 2 (one entry):", float(use1["kernel"][0, 0]), float(use2["kernel"][0, 0]))
print("shared gradient (same entry)           :", float(shared[0, 0]))
print("shared == use1 + use2:", bool(jnp.allclose(shared, use1["kernel"] + use2["kernel"], rtol=1e-5, atol=1e-6)))

lr = 1e-4
w = p["middle_linear"]["kernel"]
one_step = fnnet.fit("control_flow", steps=1, optimizer="sgd", lr=lr, params=params, data=data, seed=0)
depth0 = int(depth_schedule(0, 1)[0])
g = jax.grad(lambda p: sum_squared_error(unrolled(p, [p["middle_linear"]] * depth0, xj), yj))(p)["middle_linear"]["kernel"]
print(f"fnnet's first step (depth {depth0}) moved the shared layer once, by -lr * its summed gradient:",
      bool(jnp.allclose(one_step.params["middle_linear"]["kernel"], w - lr * g, rtol=1e-6, atol=1e-8)))"""),
]

NOTEBOOKS["09_jit"] = [
    md("# 09 · What `jit` compiles\nThe original tutorial has a chapter on static graphs (TensorFlow 1). In JAX "
       "the graph is traced from Python: `jax.make_jaxpr` shows the program one training step becomes, and XLA "
       "optimises it (fusing the elementwise work into the matmuls' neighbours). fnnet goes one step further and "
       "compiles a whole chunk of steps as one `lax.scan`, so Python runs once per chunk, not once per step.",
       "# 09 · `jit` 编译了什么\n原教程有一章讲静态图（TensorFlow 1）。在 JAX 中，计算图是从 Python 追踪出来的："
       "`jax.make_jaxpr` 展示一步训练变成的程序，XLA 再对它做优化（把逐元素运算融合在一起）。fnnet 更进一步，"
       "把一整段步数编译成一个 `lax.scan`，于是 Python 每一段只运行一次，而不是每一步一次。"),
    code("""\
import functools, time, statistics
import jax, jax.numpy as jnp, numpy as np
import fnnet
from fnnet.data import Sizes, run_keys, make_data
from fnnet.lessons import lesson_functions, LESSONS
from fnnet.optimizers import OPTIMIZERS
from fnnet.train import TrainState, train_step, run_chunk

sizes = Sizes()
fns = lesson_functions("optim", sizes)
keys = run_keys(0)
params, batch = fns.init(keys.init), make_data(sizes, key=keys.data)
optimizer = OPTIMIZERS["adam"](1e-4)
state = TrainState(params, optimizer.init(params), keys.train, jnp.asarray(0, jnp.int32))
step = functools.partial(train_step, grad_fn=fns.grad_fn, optimizer=optimizer)"""),
    md("## The jaxpr of one training step\nEvery primitive the step runs, with shapes: the two matmuls of the "
       "forward pass, their transposes in the backward pass, Adam's elementwise arithmetic.",
       "## 一步训练的 jaxpr\n这一步运行的每个基本运算及其形状：前向的两个矩阵乘法、反向中它们的转置、Adam 的逐元素运算。"),
    code("""\
jaxpr = jax.make_jaxpr(step)(state, batch)
text = jaxpr.pretty_print(use_color=False)
print(f"{len(jaxpr.eqns)} equations at the top level; dot_general (matrix products) in the step: {text.count('dot_general')}")
body = [line for line in text.splitlines() if " = " in line]
print("\\n".join(line[:110] for line in body[:25]))"""),
    md("## The optimised HLO\nWhat XLA actually runs after its passes: far fewer operations, because elementwise "
       "work is fused into loops (`fusion`) around the matrix products.",
       "## 优化后的 HLO\nXLA 优化之后真正运行的程序：运算少得多，因为逐元素运算都被融合（`fusion`）到矩阵乘法周围的循环里。"),
    code("""\
compiled = jax.jit(step).lower(state, batch).compile()
hlo = compiled.as_text()
entry = [l for l in hlo[hlo.index("ENTRY"):].splitlines()[1:] if "parameter(" not in l]
print(f"{len(hlo.splitlines())} lines of HLO; the entry computation runs {len(entry)} instructions, "
      f"{sum(' fusion(' in l for l in entry)} of them fusions and {sum(' dot(' in l for l in hlo.splitlines())} dots:")
print("\\n".join(l.strip()[:110] for l in entry[:20]))"""),
    md("## What a whole-loop `lax.scan` buys\nThe same 500 Adam steps three ways: a Python loop over a jitted "
       "step (one dispatch per step), and fnnet's compiled scan (one dispatch per chunk). Medians of 5 runs; the "
       "first call (compile) is excluded.",
       "## 整个循环用 `lax.scan` 的好处\n同样的 500 步 Adam，两种方式：Python 循环调用 jit 过的单步（每步派发一次），"
       "以及 fnnet 编译好的 scan（每段派发一次）。取 5 次运行的中位数，不计第一次（编译）。"),
    code("""\
jitted = jax.jit(step)
def python_loop():
    s, losses = state, []
    for _ in range(500):
        s, loss = jitted(s, batch)
        losses.append(loss)
    return jax.block_until_ready((s, losses))

def scan_loop():
    return jax.block_until_ready(run_chunk(state, batch, jnp.float32(1e-4), grad_fn=fns.grad_fn,
                                           make_optimizer=OPTIMIZERS["adam"], length=500))

def median_ms(fn):
    fn()
    times = []
    for _ in range(5):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times) / 500

a, b = median_ms(python_loop), median_ms(scan_loop)
print(f"python loop of jitted steps: {a:.3f} ms/step")
print(f"one lax.scan of 500 steps  : {b:.3f} ms/step  ({a / b:.1f}x)")
same = np.allclose(np.asarray(python_loop()[1]), np.asarray(scan_loop()[1]), rtol=1e-6)
print("same losses:", same)"""),
    md("The scan removes the per-step Python dispatch; what remains is the arithmetic itself. On this workload "
       "(64×1000 by 1000×100 matmuls) that arithmetic is small, so the dispatch is a large share of the "
       "per-step loop. `fnnet bench` measures all implementations side by side.",
       "scan 省掉了每一步的 Python 派发，剩下的只是计算本身。这个工作量（64×1000 乘 1000×100 的矩阵乘法）计算很小，"
       "所以派发在逐步循环中占了很大比例。`fnnet bench` 会把各种实现放在一起测量。"),
]


def build(names=None) -> None:
    import nbformat
    from nbclient import NotebookClient

    for name, cells in NOTEBOOKS.items():
        if names and name not in names:
            continue
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
                    for kind, src in cells]
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
        nbformat.write(nb, HERE / f"{name}.ipynb")
        print("built", name)


if __name__ == "__main__":
    build(sys.argv[1:])
