//! Which tokens a real-token init starts from, on MiniLM's own tokenizer and real SST-2 text:
//! `text:` is the text's word pieces repeated to P between [CLS] and [SEP]; `vocab` draws
//! frequent training tokens, never special ones, the same for the same seed.

use ptv2_harness::run::init_tokens::init_tokens;
use ptv2_harness::run::tasks::load_task;
use ptv2_models::{resolve_model, ModelDir, PromptInit, TextEncoder};

mod common;
use common::data_dir;

fn tokenizer() -> TextEncoder {
    let spec = resolve_model("minilm-l6", &ptv2_models::hub::default_cache_dir()).unwrap();
    TextEncoder::from_file(&ModelDir::new(&spec.dir).tokenizer_path().unwrap(), 64).unwrap()
}

#[test]
fn text_and_vocab_inits_pick_real_tokens() {
    let text = tokenizer();
    let mut task = load_task("sst2", &data_dir()).unwrap();
    task.subset(Some(300), Some(8), Default::default());
    let id = |t: &str| i64::from(text.token_to_id(t).unwrap());

    let init = PromptInit::Text("a great movie".into());
    let ids = init_tokens(&init, 7, 1, task.as_ref(), &text)
        .unwrap()
        .unwrap();
    let (a, great, movie) = (id("a"), id("great"), id("movie"));
    assert_eq!(
        ids,
        vec![
            id("[CLS]"),
            a,
            great,
            movie,
            a,
            great,
            movie,
            a,
            id("[SEP]")
        ]
    );

    let vocab = |seed| {
        init_tokens(&PromptInit::Vocab, 16, seed, task.as_ref(), &text)
            .unwrap()
            .unwrap()
    };
    let (one, again, two) = (vocab(1), vocab(1), vocab(2));
    assert_eq!(one, again, "same seed, same tokens");
    assert_ne!(one, two, "another seed draws other tokens");
    assert_eq!(one.len(), 18);
    let special = [
        id("[CLS]"),
        id("[SEP]"),
        id("[PAD]"),
        id("[UNK]"),
        id("[MASK]"),
    ];
    assert!(one[1..17].iter().all(|t| !special.contains(t)), "{one:?}");
    let distinct: std::collections::HashSet<_> = one[1..17].iter().collect();
    assert_eq!(
        distinct.len(),
        16,
        "P distinct tokens when the texts have them"
    );

    assert!(
        init_tokens(&PromptInit::Random, 16, 1, task.as_ref(), &text)
            .unwrap()
            .is_none()
    );
}
