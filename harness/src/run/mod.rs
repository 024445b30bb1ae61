//! One run: what it loads (setup), the tasks, the training loop with its batch plan, optimizer,
//! evaluation and resume, the real-token inits, the replay in PyTorch, and a finished run loaded
//! back (trained).

pub mod batch_plan;
pub mod evaluation;
pub mod init_tokens;
pub mod optim;
pub mod replay;
pub mod resume;
pub mod setup;
pub mod tasks;
pub mod train;
pub mod trained;
