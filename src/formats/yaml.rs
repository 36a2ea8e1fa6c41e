//! PLACEHOLDER: being written; replaced wholesale by its owner.
use super::*;
pub struct YamlStore;
impl Store for YamlStore {
    fn parse(&self, _src: &str) -> Result<Document, FormatError> { Err(FormatError::Empty { format: "yaml" }) }
    fn encrypted_leaf(&self, _leaf: &Leaf, enc: &str) -> String { enc.to_string() }
    fn plain_leaf(&self, _leaf: &Leaf, _value: &Scalar, spelling: &str) -> String { spelling.to_string() }
    fn list_comment(&self, _src: &str, _leaf: &Leaf, _text: &str) -> Option<Edit> { None }
    fn insert_metadata(&self, _src: &str, _doc: &Document, _meta: &Value) -> Vec<Edit> { vec![] }
    fn remove_metadata(&self, _src: &str, _doc: &Document) -> Vec<Edit> { vec![] }
}
