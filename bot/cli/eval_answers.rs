//! `frontdesk eval answers`: the help centre's retrieval (and, with `[llm]`, the LLM's
//! answer task) on labelled questions. Split from `eval.rs`.

use std::sync::Arc;

use anyhow::Context as _;
use frontdesk::config::Config;
use frontdesk::kb::{eval as kb_eval, HelpCentre, Kb};
use frontdesk::llm::LlmHandle;

use super::eval::EvalArgs;

/// `eval answers`: the help centre's retrieval on labelled questions; with `[llm]`, the
/// answer task on the same questions.
pub(super) fn answers(a: &EvalArgs) -> anyhow::Result<()> {
    let config = Config::load(a.places.config.as_deref())?;
    let opts = a.places.options()?;
    let nlu = Arc::new(frontdesk::nlu::Nlu::load(&opts)?);
    let dir = match a.kb.clone().or(config.kb.dir.clone()) {
        Some(d) => d,
        None => frontdesk::defaults::materialize(&opts.cache_dir)?
            .root
            .join("kb"),
    };
    let mut kb = Kb::load(&dir, nlu.as_ref(), Some(&opts.cache_dir))?;
    let questions = kb_eval::read_questions(&a.test, &kb)?;
    let mut r = kb_eval::evaluate(
        &mut kb,
        nlu.as_ref(),
        &questions,
        config.kb.min_score,
        frontdesk::kb::DEFAULT_WEIGHT,
    )?;
    if config.llm.enabled() {
        let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        let help = HelpCentre::new(kb, Arc::clone(&nlu), config.kb.min_score);
        let report = runtime.block_on(async {
            let handle = LlmHandle::from_config(&config.llm)?
                .context("[llm] is enabled but gave no client")?;
            let bar = super::support::progress_bar("LLM answers", questions.len() as u64);
            let report = kb_eval::evaluate_llm(&help, &handle, &questions, &|| bar.inc(1)).await;
            bar.finish_and_clear();
            anyhow::Ok(report)
        })?;
        r.llm = Some(report);
    }
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    println!(
        "{} questions ({} answerable), {} passages; weight {:.2}, min_score {:.2}",
        r.questions, r.answerable, r.passages, r.weight, r.min_score
    );
    println!(
        "recall@1 {:.3}  recall@3 {:.3}  answered {:.3} (right article {:.3})  unanswerable \
         declined {:.3}",
        r.recall_at_1, r.recall_at_3, r.answered, r.answered_correct, r.declined
    );
    println!(
        "p50 per question: search {:.3} ms; encoder (embedding the question) {:.2} ms",
        r.retrieval_p50_ms, r.encoder_p50_ms
    );
    println!("weight  recall@1  recall@3  answered  right  declined");
    for w in &r.weights {
        println!(
            "{:.2}    {:.3}     {:.3}     {:.3}     {:.3}  {:.3}",
            w.weight, w.recall_at_1, w.recall_at_3, w.answered, w.answered_correct, w.declined
        );
    }
    if !r.misses.is_empty() {
        println!("misses (expected -> got, score)");
        for m in &r.misses {
            println!(
                "  {:?}: {} -> {} ({:.3})",
                m.question,
                m.expected.as_deref().unwrap_or("none"),
                m.got,
                m.score
            );
        }
    }
    match &r.llm {
        Some(l) => print_llm(l),
        None => println!(
            "LLM answers: not measured; they need [llm] (llm.url and llm.model, or \
             FRONTDESK_LLM_URL / FRONTDESK_LLM_MODEL / FRONTDESK_LLM_API_KEY)"
        ),
    }
    Ok(())
}

/// The answer task's figures of `eval answers`.
fn print_llm(l: &kb_eval::LlmReport) {
    let counts = |m: &std::collections::BTreeMap<String, usize>| {
        if m.is_empty() {
            "none".to_string()
        } else {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    println!(
        "LLM answers ({}, {} questions, p50 {:.0} ms per answer)",
        l.model, l.questions, l.p50_ms
    );
    println!(
        "  answerable: answered {:.3}  handed off {:.3}; key fact in answers {:.3} \
         (of all {} with a fact {:.3})",
        l.answered, l.handed_off, l.fact_in_answers, l.with_fact, l.fact_overall
    );
    println!(
        "  unanswerable: declined (hand-off) {:.3}  answered anyway {:.3}; with the desk's \
         llm.min_passage_score gate declined {:.3} ({} questions below it)",
        l.declined, l.answered_unanswerable, l.declined_with_gate, l.below_min_passage_score
    );
    println!("  guardrail blocks: {}", counts(&l.blocked));
    println!("  LLM errors: {}", counts(&l.errors));
    if !l.misses.is_empty() {
        println!("  LLM misses (expected [fact] -> outcome: answer)");
        for m in &l.misses {
            println!(
                "    {:?}: {} [{}] -> {}: {}",
                m.question,
                m.expected.as_deref().unwrap_or("none"),
                m.fact.as_deref().unwrap_or("-"),
                m.outcome,
                m.answer.as_deref().unwrap_or("")
            );
        }
    }
}
