//! The tantivy query of a user's query text, built clause by clause from tantivy's parse of
//! it: tantivy's parser builds each leaf, except those on the resource's fields, which
//! [`ResourceFilter`] answers from the resource column.
//!
//! Building the clauses here also gives `a AND NOT b` its meaning: tantivy's grammar reads
//! it as `+a +(-b)`, and a clause of nothing but exclusions matches nothing in tantivy, so
//! the query found nothing at all.

use crate::resource_filter::ResourceFilter;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, Occur, Query, QueryParser, QueryParserError,
};
use tantivy::query_grammar::UserInputAst;

/// The query of `text`, its leaves built (and their mistakes found) by `parser`; `default`
/// is the occur the parser gives a clause written without `+`, `-`, AND or OR.
pub(crate) fn query_of(
    parser: &QueryParser,
    text: &str,
    default: Occur,
) -> Result<Box<dyn Query>, QueryParserError> {
    let ast = tantivy::query_grammar::parse_query(text)
        .map_err(|_| QueryParserError::SyntaxError(text.to_string()))?;
    build(parser, ast, default)
}

/// The query of `ast`, with the occurs tantivy's parser gives; a clause that comes to
/// nothing (a word the tokenizer drops) is left out of its parent, as the parser does.
fn build(
    parser: &QueryParser,
    ast: UserInputAst,
    default: Occur,
) -> Result<Box<dyn Query>, QueryParserError> {
    match ast {
        UserInputAst::Clause(children) => {
            let mut clauses = Vec::with_capacity(children.len());
            for (occur, child) in children {
                let query = build(parser, child, default)?;
                if !query.is::<EmptyQuery>() {
                    clauses.push((occur.unwrap_or(default), query));
                }
            }
            if clauses.is_empty() {
                return Ok(Box::new(EmptyQuery));
            }
            // Exclusions alone (`NOT b` in `a AND NOT b`) exclude from everything.
            if clauses.iter().all(|(occur, _)| *occur == Occur::MustNot) {
                clauses.push((Occur::Must, Box::new(AllQuery)));
            }
            Ok(Box::new(BooleanQuery::new(clauses)))
        }
        // Hits are ordered by time, never scored: a boost changes nothing.
        UserInputAst::Boost(child, _) => build(parser, *child, default),
        UserInputAst::Leaf(leaf) => match ResourceFilter::of_leaf(&leaf) {
            Some(filter) => Ok(Box::new(filter?.query())),
            None => parser.build_query_from_user_input_ast(UserInputAst::Leaf(leaf)),
        },
    }
}
