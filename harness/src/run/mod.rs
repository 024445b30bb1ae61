//! One run: the tasks, the training loop, its optimizer and resume, the real-token inits, the replay in PyTorch.

pub mod batch_plan;
pub mod init_tokens;
pub mod optim;
pub mod replay;
pub mod resume;
pub mod tasks;
pub mod train;
