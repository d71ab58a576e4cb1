//! The model-answer parser: any bytes a model server might send back, as a
//! whole chat-completions body and as the message content alone. It must
//! never panic, and whatever it accepts has exactly the active fields.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use cardex_core::{Field, FieldType};
use cardex_engine::CompiledPrompt;
use cardex_engine::vlm::read_completion;
use libfuzzer_sys::fuzz_target;

static PROMPT: LazyLock<CompiledPrompt> = LazyLock::new(|| {
    let field = |name: &str, kind| Field {
        name: name.into(),
        description: String::new(),
        kind,
        active: true,
    };
    let mut inactive = field("notes", FieldType::Text);
    inactive.active = false;
    CompiledPrompt::new(&[
        field("title", FieldType::Text),
        field("price", FieldType::Number),
        field("year", FieldType::Integer),
        field("published", FieldType::Date),
        field("signed", FieldType::Boolean),
        field("subjects", FieldType::List),
        inactive,
    ])
    .expect("a fixed field list compiles")
});

const NAMES: [&str; 6] = ["title", "price", "year", "published", "signed", "subjects"];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(extraction) = read_completion(&text, &PROMPT, Duration::ZERO) {
        assert!(extraction.fields.keys().eq(NAMES.iter().copied()));
    }
    if let Ok(answer) = PROMPT.read_answer(&text) {
        let fields = answer.values;
        assert!(fields.keys().eq(NAMES.iter().copied()));
        // Every flag names one of the fields.
        assert!(answer.flags.iter().all(|f| f.field.as_deref().is_some_and(|n| NAMES.contains(&n))));
        // What was accepted serialises back to JSON.
        serde_json::to_string(&fields).expect("accepted values serialise");
    }
});
