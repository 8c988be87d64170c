//! Reading the help centre: one Markdown article per file (`# Title`, an optional opening
//! paragraph, `## ` sections), cut into passages of at most [`MAX_WORDS`] words.

use std::path::Path;

use super::KbError;

/// Longest passage, in words: short enough to quote in a chat and to embed whole.
pub const MAX_WORDS: usize = 120;

/// One article of the help centre.
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    /// The file stem: stable, and the last part of the article's link.
    pub id: String,
    pub title: String,
    /// (section heading, text); the opening paragraph has an empty heading.
    pub sections: Vec<(String, String)>,
}

/// A passage of an article: the unit that is embedded, indexed and quoted.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    pub article: usize,
    pub section: String,
    pub text: String,
}

impl Article {
    /// Parses one article; `None` when it has no `# Title` line.
    pub fn parse(id: &str, markdown: &str) -> Option<Article> {
        let mut title = None;
        let mut sections: Vec<(String, String)> = vec![(String::new(), String::new())];
        for line in markdown.lines() {
            let line = line.trim_end();
            if let Some(h) = line.strip_prefix("## ") {
                sections.push((h.trim().to_string(), String::new()));
            } else if let Some(h) = line.strip_prefix("# ").filter(|_| title.is_none()) {
                title = Some(h.trim().to_string());
            } else if let Some((_, body)) = sections.last_mut() {
                if !body.is_empty() {
                    body.push('\n');
                }
                body.push_str(line);
            }
        }
        let sections = sections
            .into_iter()
            .map(|(h, b)| (h, b.trim().to_string()))
            .filter(|(_, b)| !b.is_empty())
            .collect();
        Some(Article {
            id: id.to_string(),
            title: title?,
            sections,
        })
    }

    /// This article's passages: each section, split at sentence ends into pieces of at
    /// most [`MAX_WORDS`] words.
    pub fn passages(&self, index: usize) -> Vec<Passage> {
        let mut out = Vec::new();
        for (heading, body) in &self.sections {
            for text in split_words(body, MAX_WORDS) {
                out.push(Passage {
                    article: index,
                    section: heading.clone(),
                    text,
                });
            }
        }
        out
    }
}

/// Splits `text` into pieces of at most `max` words, at sentence ends where it can.
fn split_words(text: &str, max: usize) -> Vec<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = Vec::new();
    let mut start = 0;
    while start < words.len() {
        let end = (start + max).min(words.len());
        let cut = if end == words.len() {
            end
        } else {
            // the last sentence end in the window, if any
            (start + 1..end)
                .rev()
                .find(|&i| words[i - 1].ends_with(['.', '!', '?']))
                .unwrap_or(end)
        };
        out.push(words[start..cut].join(" "));
        start = cut;
    }
    out
}

/// Every `*.md` article in `dir` (README files excluded), ordered by id.
pub fn load_dir(dir: &Path) -> Result<Vec<(Article, String)>, KbError> {
    let read_err = |source| KbError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let Some(id) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if id.eq_ignore_ascii_case("readme") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|source| KbError::Read {
            path: path.clone(),
            source,
        })?;
        match Article::parse(id, &text) {
            Some(a) => out.push((a, text)),
            None => {
                tracing::warn!(path = %path.display(), "help article without a # title: skipped")
            }
        }
    }
    if out.is_empty() {
        return Err(KbError::Empty(dir.to_path_buf()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_become_passages_under_their_heading() {
        let a = Article::parse(
            "returns",
            "# Returns\n\nFree within 30 days.\n\n## How\n\nUse the label.\nDrop it off.\n",
        )
        .unwrap();
        assert_eq!(a.title, "Returns");
        let p = a.passages(0);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].section, "");
        assert_eq!(p[1].section, "How");
        assert_eq!(p[1].text, "Use the label. Drop it off.");
    }

    #[test]
    fn long_sections_split_at_sentence_ends() {
        let text = "One two three. Four five. Six seven eight nine.";
        assert_eq!(
            split_words(text, 6),
            vec!["One two three. Four five.", "Six seven eight nine."]
        );
        assert!(split_words(&"w ".repeat(300), 120)
            .iter()
            .all(|p| p.split_whitespace().count() <= 120));
    }
}
