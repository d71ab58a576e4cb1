//! The cardex domain: what a batch, a card and a field are, how batches are
//! named, which state changes are allowed, and how a field list becomes the
//! prompt and JSON Schema sent to a model. Nothing here does I/O.

pub mod crosscheck;
pub mod field;
pub mod flag;
pub mod naming;
pub mod prompt;
pub mod review;
pub mod sides;
pub mod state;
pub mod usage;
pub mod values;

pub use field::{Field, FieldError, FieldType, validate_fields};
pub use flag::{Flag, FlagCode};
pub use naming::{BatchName, NameError};
pub use prompt::{Prompt, build_prompt};
pub use review::ReviewStatus;
pub use sides::{Pairing, Side};
pub use state::{BatchState, CardState};
pub use usage::{Budget, Prices, Usage};
