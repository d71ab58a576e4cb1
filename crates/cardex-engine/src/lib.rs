//! cardex engines: what reads a card, and the image handling around it.

pub mod image;
