"""The tutorial's `optim` step as a standalone PyTorch script (imports nothing but torch).

`fnnet bench` times this whole process against `fnnet train optim`: what a
person at a terminal waits for, imports included. It prints every loss, as the
tutorial does.
"""

import torch

N, D_in, H, D_out = 64, 1000, 100, 10

x = torch.randn(N, D_in)
y = torch.randn(N, D_out)

model = torch.nn.Sequential(torch.nn.Linear(D_in, H), torch.nn.ReLU(), torch.nn.Linear(H, D_out))
loss_fn = torch.nn.MSELoss(reduction="sum")
optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

for t in range(500):
    loss = loss_fn(model(x), y)
    print(t, loss.item())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
