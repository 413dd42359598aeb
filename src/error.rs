//! One error type for every failure a request can answer with, and the catalogue that renders it.
//!
//! Handlers never build message strings: they build a [`CcError`] from a code and its arguments,
//! and the HTTP edge renders it in the request's language with [`CcError::render`]. Rendering
//! reproduces Go's `fmt.Sprintf` as bk-cmdb uses it, including the `%!(EXTRA string=…)` suffix for
//! a template without `%s` and the nested wrapping of item-level errors (spec 1.4 and 2.12).

use std::fmt;

/// The language a message is rendered in. `Zh` is bk-cmdb's `default` pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

/// Error codes (bk-cmdb `src/common/errInfo.go`).
pub mod code {
    pub const SUCCESS: i64 = 0;
    pub const NO_PERMISSION: i64 = 9900403;
    pub const JSON_UNMARSHAL: i64 = 1199000;
    pub const HTTP_DO_REQUEST: i64 = 1199002;
    pub const HTTP_READ_BODY: i64 = 1199004;
    pub const PARAMS_INVALID: i64 = 1199006;
    pub const PARAMS_NEED_STRING: i64 = 1199007;
    pub const PARAMS_NEED_INT: i64 = 1199009;
    pub const PARAMS_NEED_SET: i64 = 1199010;
    pub const PARAMS_IS_INVALID: i64 = 1199011;
    pub const DUPLICATE_ITEM: i64 = 1199014;
    pub const OVER_LIMIT: i64 = 1199015;
    pub const FIELD_REG_VALID: i64 = 1199016;
    pub const DB_SELECT: i64 = 1199017;
    pub const DB_INSERT: i64 = 1199018;
    pub const NOT_FOUND: i64 = 1199019;
    pub const PARAMS_NEED_BOOL: i64 = 1199025;
    pub const NOT_AUTH_ITEM: i64 = 1199027;
    pub const EXCEED_LIMIT: i64 = 1199035;
    pub const AUTHORIZE_FAILED: i64 = 1199046;
    pub const NOT_HAVE_PERMISSION: i64 = 1199047;
    pub const GENERATE_RECORD_ID: i64 = 1199058;
    pub const PAGE_LIMIT_EXCEEDED: i64 = 1199059;
    pub const ARRAY_LENGTH_WRONG: i64 = 1199089;
    pub const UNKNOWN: i64 = 1199998;
    pub const INTERNAL: i64 = 1199999;
    pub const TOPO_GET_MODULE: i64 = 1101034;
    pub const PROC_CREATE_PROCESS: i64 = 1108008;
    pub const PROC_DELETE_SERVICE_INSTANCES: i64 = 1108026;
    pub const PROC_EDIT_BY_TEMPLATE_FORBIDDEN: i64 = 1108035;
    pub const HOST_MODULE_NOT_MATCH: i64 = 1110056;
    pub const MODULE_NOT_BELONG_BIZ: i64 = 1113004;
    pub const SERVICE_INSTANCE_EXISTS: i64 = 1113016;
    pub const PROCESS_NAME_DUPLICATED: i64 = 1113019;
    pub const FUNC_NAME_DUPLICATED: i64 = 1113020;
    pub const REMOVE_TEMPLATE_PROCESS: i64 = 1113022;
    pub const ONLY_LEAF_CATEGORY: i64 = 1113032;
    // Service and process templates.
    pub const HTTP_INPUT_INVALID: i64 = 1199003;
    pub const PROC_DELETE_TEMPLATE: i64 = 1108014;
    pub const PROC_DELETE_SERVICE_TEMPLATE: i64 = 1108030;
    pub const DB_UPDATE: i64 = 1199020;
    pub const PROC_BIND_PORT_NOT_SET: i64 = 1107014;
    pub const PROC_BIND_PROTOCOL_NOT_SET: i64 = 1107015;
    pub const TOPO_GET_APP_FAILED: i64 = 1101133;
    pub const HOST_QUERY_FAILED: i64 = 1110001;
    pub const HOST_NOT_FOUND: i64 = 1110008;
    pub const INPUT_EMPTY: i64 = 1199005;
    pub const VAL_EXCEED_MAX: i64 = 1199073;
    pub const MODIFY_FIELD_FORBIDDEN: i64 = 1199083;
    pub const AT_LEAST_ONE_SET: i64 = 1199091;
    pub const TOPO_HAS_HOST: i64 = 1101030;
    pub const TOPO_QUERY_BIZ_FAILED: i64 = 1101033;
    pub const TOPO_MODULE_NOT_FOUND: i64 = 1101080;
    pub const TOPO_UPDATE_TEMPLATE_CATEGORY: i64 = 1101090;
    pub const TOPO_UPDATE_TEMPLATE_NAME: i64 = 1101091;
    pub const TOPO_SET_TEMPLATE_MODULES: i64 = 1101097;
    pub const TOPO_BUILT_IN_READ_ONLY: i64 = 1101098;
    pub const TOPO_SET_NAME_EXISTS: i64 = 1101108;
    pub const CATEGORY_TEMPLATE_MISMATCH: i64 = 1108036;
    pub const HOST_ADD_TO_MODULE: i64 = 1110030;
    pub const HOST_NOT_BELONG_BIZ: i64 = 1113002;
    pub const MULTIPLE_MODULES_WITH_INNER: i64 = 1113005;
    pub const BIZ_NOT_EXIST: i64 = 1113006;
    pub const TRANSFER_TO_DEFAULT_WRONG_METHOD: i64 = 1113013;
    // Template sync and service categories.
    pub const SYNC_BY_TEMPLATE_FAILED: i64 = 1108045;
    pub const CATEGORY_NAME_DUPLICATED: i64 = 1113017;
    pub const MODULE_TEMPLATE_MISMATCH: i64 = 1113018;
    pub const BUILT_IN_FORBIDDEN: i64 = 1199054;
    pub const HAS_CHILD_NODE: i64 = 1199055;
    pub const REFERENCED_RECORD: i64 = 1199056;
    // resource_watch.
    pub const EVENT_NODE_NOT_EXIST: i64 = 1103007;
}

/// `(code, en template, zh template)`: the catalogue of every code these APIs answer with
/// (bk-cmdb `resources/errors/english/en/*.json` and `resources/errors/common/default/*.json`).
const CATALOGUE: &[(i64, &str, &str)] = &[
    (code::SUCCESS, "success", "success"),
    (
        code::NO_PERMISSION,
        "Do not have access permission.",
        "没有操作的权限",
    ),
    (
        code::JSON_UNMARSHAL,
        "Deserializing JSON data failed",
        "反序列化JSON数据失败",
    ),
    (code::HTTP_DO_REQUEST, "HTTP request failed", "HTTP请求失败"),
    (code::HTTP_READ_BODY, "Data read failed", "数据读取失败"),
    (
        code::PARAMS_INVALID,
        "'%s' data parameter verification does not pass",
        "'%s' 数据参数校验不通过",
    ),
    (
        code::PARAMS_NEED_STRING,
        "'%s' must be a string type",
        "'%s' 必须为字符串类型",
    ),
    (
        code::PARAMS_NEED_INT,
        "'%s' parameters must be integral",
        "'%s' 参数必须是整型",
    ),
    (code::PARAMS_NEED_SET, "'%s' unassigned", "'%s' 未赋值"),
    (
        code::PARAMS_IS_INVALID,
        "'%s' the parameter is invalid or does not exist",
        "'%s' 参数无效或不存在",
    ),
    (
        code::DUPLICATE_ITEM,
        "duplicated instances exist, fields [%s] duplicated",
        "数据唯一性校验失败， %s 重复",
    ),
    (code::OVER_LIMIT, "Data out of bounds", "'%s' 数据越界"),
    (
        code::FIELD_REG_VALID,
        "'%s' Field regular check failed",
        "'%s' 字段正则校验失败",
    ),
    (code::DB_SELECT, "Failed to query data", "查询数据失败"),
    (code::DB_INSERT, "New data failed", "新加数据失败"),
    (
        code::GENERATE_RECORD_ID,
        "generate record id failed",
        "生成记录ID失败",
    ),
    (code::NOT_FOUND, "No relevant data found", "未找到相关数据"),
    (
        code::PARAMS_NEED_BOOL,
        "'%s' must be boolean",
        "'%s' 必须为bool类型",
    ),
    (
        code::NOT_AUTH_ITEM,
        "'%s' authorization information query failed",
        "[%s]授权信息查询失败",
    ),
    (
        code::EXCEED_LIMIT,
        " %s exceed the limit %d",
        " %s 超过限制 %d",
    ),
    (
        code::AUTHORIZE_FAILED,
        "Authorize request failed.",
        "鉴权失败",
    ),
    (
        code::NOT_HAVE_PERMISSION,
        "Do not have access permission.",
        "没有操作的权限",
    ),
    (
        code::PAGE_LIMIT_EXCEEDED,
        "page limit is exceeded. suggestion 200",
        "分页查询数量超过限制的最大值, 建议值200",
    ),
    (
        code::ARRAY_LENGTH_WRONG,
        "the length of array %s is wrong, the length must be in range 1~%d",
        "%s数组长度错误，数组长度必须在1~%d之间",
    ),
    (
        code::UNKNOWN,
        "Unknown or unrecognized error",
        "未知或未能识别的异常",
    ),
    (
        code::INTERNAL,
        "'%s' Internal Server Error",
        "'%s' 服务器内部错误",
    ),
    (
        code::TOPO_GET_MODULE,
        "query module failed,%s",
        "查询模块失败,%s",
    ),
    (
        code::PROC_CREATE_PROCESS,
        "The creation process failed",
        "创建进程失败",
    ),
    (
        code::PROC_DELETE_SERVICE_INSTANCES,
        "delete service instance failed",
        "删除进程服务实例失败",
    ),
    (
        code::PROC_EDIT_BY_TEMPLATE_FORBIDDEN,
        "create or update process instance under service instance create by template forbidden",
        "通过模板创建的服务实例禁止直接添加/修改进程实例",
    ),
    (
        code::HOST_MODULE_NOT_MATCH,
        "Operation failed, the following host does not belong to the target module: %s",
        "操作失败，以下主机不属于目标模块：%s",
    ),
    (
        code::MODULE_NOT_BELONG_BIZ,
        "ModuleID [%#v] has not belong to  businessID [%d]",
        "模块ID[%#v]不属于业务ID[%v]",
    ),
    (
        code::SERVICE_INSTANCE_EXISTS,
        "service instance bound to host [%s] already exist",
        "服务实例[%s]已经存在",
    ),
    (
        code::PROCESS_NAME_DUPLICATED,
        "process name [%s] unique validation failed",
        "进程别名[%s]唯一校验失败",
    ),
    (
        code::FUNC_NAME_DUPLICATED,
        "process name [%s] and start parameter [%s] unique validation failed",
        "进程名称[%s]+启动参数[%s]唯一校验失败",
    ),
    (
        code::REMOVE_TEMPLATE_PROCESS,
        "delete processe [%s] created by template forbidden",
        "通过模板创建的进程[%s]禁止删除",
    ),
    (
        code::ONLY_LEAF_CATEGORY,
        "only leaf node available",
        "仅允许使用叶子结点服务分类",
    ),
    // Service and process templates.
    (
        code::HTTP_INPUT_INVALID,
        "invalid input parameter",
        "输入参数无效",
    ),
    (
        code::PROC_DELETE_TEMPLATE,
        "delete config template failed",
        "删除配置模板失败",
    ),
    (
        code::PROC_DELETE_SERVICE_TEMPLATE,
        "delete service template failed",
        "删除服务模板失败",
    ),
    (code::DB_UPDATE, "Failed to update data", "更新数据失败"),
    (
        code::TOPO_GET_APP_FAILED,
        "Query service failure",
        "查询业务失败",
    ),
    (code::HOST_QUERY_FAILED, "Query Host Failed", "查询主机失败"),
    (
        code::HOST_NOT_FOUND,
        "The host could not be found",
        "主机找不到",
    ),
    (code::INPUT_EMPTY, "The input is empty", "输入内容为空"),
    // Topology and host writes.
    (
        code::VAL_EXCEED_MAX,
        "%s field exceeds maximum value %s",
        "字段%s超过最大值%d",
    ),
    (
        code::MODIFY_FIELD_FORBIDDEN,
        "modify field %s forbidden",
        "禁止修改字段: %s",
    ),
    (
        code::AT_LEAST_ONE_SET,
        "at least one of %s and %s must be set",
        "至少设置[%s]和[%s]中的一个值",
    ),
    (
        code::TOPO_HAS_HOST,
        "Having hosts under the target, deleting forbidden",
        "目标包含主机, 不允许删除",
    ),
    (
        code::TOPO_QUERY_BIZ_FAILED,
        "query business failed",
        "查询业务失败",
    ),
    (
        code::TOPO_MODULE_NOT_FOUND,
        "topo module not found",
        "拓扑模块没找到",
    ),
    (
        code::TOPO_UPDATE_TEMPLATE_CATEGORY,
        "update service category on module create by template forbidden",
        "禁止修改由模板创建模块的服务分类",
    ),
    (
        code::TOPO_UPDATE_TEMPLATE_NAME,
        "update name field on module create by template forbidden",
        "禁止修改由模板创建模块的名称",
    ),
    (
        code::TOPO_SET_TEMPLATE_MODULES,
        "forbidden add/remove module on set initialized by set template",
        "集群由集群模板创建，禁止添加/删除模块",
    ),
    (
        code::TOPO_BUILT_IN_READ_ONLY,
        "forbidden remove or update built in set or module",
        "禁止删除或更新内置集群/模块",
    ),
    (
        code::TOPO_SET_NAME_EXISTS,
        "the same set name exist",
        "已经存在同名的集群",
    ),
    (
        code::CATEGORY_TEMPLATE_MISMATCH,
        "service category and template not conincide",
        "服务分类与服务模板不一致",
    ),
    (
        code::HOST_ADD_TO_MODULE,
        "Failed to add host to module, error:%s",
        "添加主机到模块失败, error:%s",
    ),
    (
        code::HOST_NOT_BELONG_BIZ,
        "hostID [%#v] does not belong of  businessID [%d]",
        "主机ID[%#v]不属于业务ID[%#v]",
    ),
    (
        code::MULTIPLE_MODULES_WITH_INNER,
        "translate host to multiple module not contain inner module",
        "将主机转移为多个模块不包含内置模块",
    ),
    (
        code::BIZ_NOT_EXIST,
        "Business [%#v] does not exist",
        "业务[%#v]不存在",
    ),
    (
        code::TRANSFER_TO_DEFAULT_WRONG_METHOD,
        "transfer host to default module use the wrong method",
        "转移主机到默认模块调用了错误接口",
    ),
    (
        code::PROC_BIND_PORT_NOT_SET,
        "service instance process bind info port is not set correctly, please check and try again",
        "服务实例的进程绑定信息[端口]未正确设置，请检查后重试",
    ),
    (
        code::PROC_BIND_PROTOCOL_NOT_SET,
        "service instance process bind info protocol is not set correctly, please check and try again",
        "服务实例的进程绑定信息[协议]未正确设置，请检查后重试",
    ),
    // Template sync and service categories.
    (
        code::SYNC_BY_TEMPLATE_FAILED,
        "sync service instance by template failed",
        "通过服务模版同步服务实例失败",
    ),
    (
        code::CATEGORY_NAME_DUPLICATED,
        "service caetgory name [%s] duplicated",
        "服务分类名称【%s】重复",
    ),
    (
        code::MODULE_TEMPLATE_MISMATCH,
        "module and service instance template not coincide",
        "模块与服务实例模板不一致",
    ),
    (
        code::BUILT_IN_FORBIDDEN,
        "operate built-in object forbidden",
        "内置结点，禁止删除",
    ),
    (
        code::HAS_CHILD_NODE,
        "forbidden remove item with child node",
        "禁止父结点记录",
    ),
    (
        code::REFERENCED_RECORD,
        "remove referenced record forbidden",
        "禁止删除被引用记录",
    ),
    (
        code::EVENT_NODE_NOT_EXIST,
        "Event chain node not exist",
        "事件节点不存在",
    ),
];

/// The template of `code` in `lang`, if the catalogue has it.
pub fn template(code: i64, lang: Lang) -> Option<&'static str> {
    CATALOGUE
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, en, zh)| if lang == Lang::En { *en } else { *zh })
}

/// One argument of a template, as Go's `Sprintf` would receive it.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Str(String),
    Int(i64),
    /// An error rendered (in the same language) before being formatted in: bk-cmdb's wrapping.
    Err(Box<CcError>),
    /// A Go `[]int64`: `%s` gives `[%!s(int64=1) %!s(int64=2)]`, `%v` and `%d` give `[1 2]`.
    Ints(Vec<i64>),
}

#[derive(Clone, Debug, PartialEq)]
enum Message {
    /// Rendered from the catalogue template of the code.
    Template(Vec<Arg>),
    /// Used verbatim in every language (bk-cmdb's `errors.New(code, msg)`).
    Raw(String),
    /// Another error's text under this code (bk-cmdb's `errors.New(code, err.Error())` of a
    /// localised error): rendered in the request's language.
    Recoded(Box<CcError>),
    /// The catalogue template itself, `%s` left as is (bk-cmdb's `RespErrorCodeOnly` and
    /// `CCError(code)` of a template that takes arguments).
    Bare,
}

/// A bk-cmdb error: a code and what its message is made of.
#[derive(Clone, Debug, PartialEq)]
pub struct CcError {
    pub code: i64,
    message: Message,
}

impl CcError {
    /// The code's template with these arguments.
    pub fn new(code: i64, args: Vec<Arg>) -> CcError {
        CcError {
            code,
            message: Message::Template(args),
        }
    }

    /// The code's template with no argument.
    pub fn plain(code: i64) -> CcError {
        CcError::new(code, Vec::new())
    }

    /// The code's template with one string argument.
    pub fn with(code: i64, arg: impl Into<String>) -> CcError {
        CcError::new(code, vec![Arg::Str(arg.into())])
    }

    /// bk-cmdb's 1199035 `" <what> exceed the limit <max>"` (`CCErrCommXXExceedLimit`).
    pub fn exceed_limit(what: impl Into<String>, max: i64) -> CcError {
        CcError::new(
            code::EXCEED_LIMIT,
            vec![Arg::Str(what.into()), Arg::Int(max)],
        )
    }

    /// The code's template unformatted (`'%s' data parameter verification does not pass`).
    pub fn bare(code: i64) -> CcError {
        CcError {
            code,
            message: Message::Bare,
        }
    }

    /// A verbatim message, identical in every language.
    pub fn raw(code: i64, message: impl Into<String>) -> CcError {
        CcError {
            code,
            message: Message::Raw(message.into()),
        }
    }

    /// `inner`'s message, in the request's language, under `code`.
    pub fn recode(code: i64, inner: CcError) -> CcError {
        CcError {
            code,
            message: Message::Recoded(Box::new(inner)),
        }
    }

    /// `'<what>' data parameter verification does not pass` (1199006).
    pub fn invalid(what: impl Into<String>) -> CcError {
        CcError::with(code::PARAMS_INVALID, what)
    }

    /// 1199011: `'%s' the parameter is invalid or does not exist`.
    pub fn invalid_param(what: impl Into<String>) -> CcError {
        CcError::with(code::PARAMS_IS_INVALID, what)
    }

    /// Re-wrap `inner` in `code`'s template, as bk-cmdb's `CCErrorf(code, inner.Error())` does.
    pub fn wrap(code: i64, inner: CcError) -> CcError {
        CcError::new(code, vec![Arg::Err(Box::new(inner))])
    }

    /// The JSON decoding failure (1199000).
    pub fn json() -> CcError {
        CcError::plain(code::JSON_UNMARSHAL)
    }

    /// A failure of the store itself, answered with `code` (1199017 for reads, 1199018 for
    /// writes); the cause goes to the server log, not to the client.
    pub fn storage(code: i64, cause: &dyn fmt::Display) -> CcError {
        crate::log!(error, "cmdb-lite: storage error: {cause}");
        CcError::plain(code)
    }

    /// The message in `lang`.
    pub fn render(&self, lang: Lang) -> String {
        match &self.message {
            Message::Raw(text) => text.clone(),
            Message::Recoded(inner) => inner.render(lang),
            Message::Bare => template(self.code, lang)
                .map(String::from)
                .unwrap_or_else(|| format!("Unknown error code: {}", self.code)),
            Message::Template(args) => {
                let rendered: Vec<Rendered> = args
                    .iter()
                    .map(|a| match a {
                        Arg::Str(s) => Rendered::Str(s.clone()),
                        Arg::Int(i) => Rendered::Int(*i),
                        Arg::Err(e) => Rendered::Str(e.render(lang)),
                        Arg::Ints(v) => Rendered::Ints(v.clone()),
                    })
                    .collect();
                match template(self.code, lang) {
                    Some(t) => sprintf(t, &rendered),
                    // A code outside the catalogue renders like bk-cmdb's unknown-code fallback.
                    None => format!("Unknown error code: {}", self.code),
                }
            }
        }
    }
}

impl fmt::Display for CcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.render(Lang::En), self.code)
    }
}

impl std::error::Error for CcError {}

enum Rendered {
    Str(String),
    Int(i64),
    Ints(Vec<i64>),
}

/// Go's formatting of an `[]int64` under `verb`.
fn ints(verb: char, v: &[i64]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|i| match verb {
            'v' | 'd' => i.to_string(),
            other => format!("%!{other}(int64={i})"),
        })
        .collect();
    format!("[{}]", items.join(" "))
}

/// Go's `fmt.Sprintf` for the verbs the catalogue uses: `%s`, `%d`, `%v`, `%#v`, `%%`.
/// Missing arguments render as `%!s(MISSING)`, surplus ones as `%!(EXTRA string=…)`.
fn sprintf(template: &str, args: &[Rendered]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut next = 0usize;
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut sharp = false;
        if chars.peek() == Some(&'#') {
            sharp = true;
            chars.next();
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(next) {
            None => {
                out.push_str(&format!("%!{verb}(MISSING)"));
            }
            Some(arg) => {
                next += 1;
                match (verb, arg) {
                    ('s' | 'v', Rendered::Str(s)) if !sharp => out.push_str(s),
                    ('v', Rendered::Str(s)) => out.push_str(&format!("{s:?}")),
                    ('s' | 'v' | 'd', Rendered::Int(i)) => out.push_str(&i.to_string()),
                    ('v', Rendered::Ints(list)) if sharp => {
                        let items: Vec<String> = list.iter().map(i64::to_string).collect();
                        out.push_str(&format!("[]int64{{{}}}", items.join(", ")));
                    }
                    (v, Rendered::Ints(list)) => out.push_str(&ints(v, list)),
                    ('d', Rendered::Str(s)) => out.push_str(&format!("%!d(string={s})")),
                    (v, Rendered::Str(s)) => out.push_str(&format!("%!{v}(string={s})")),
                    (v, Rendered::Int(i)) => out.push_str(&format!("%!{v}(int64={i})")),
                }
            }
        }
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| match a {
                Rendered::Str(s) => format!("string={s}"),
                Rendered::Int(i) => format!("int64={i}"),
                Rendered::Ints(list) => format!("[]int64={}", ints('v', list)),
            })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_both_templates() {
        for (c, en, zh) in CATALOGUE {
            assert!(!en.is_empty() && !zh.is_empty(), "code {c}");
        }
    }

    #[test]
    fn extra_argument_is_go_formatted() {
        let e = CcError::with(code::OVER_LIMIT, "进程别名");
        assert_eq!(
            e.render(Lang::En),
            "Data out of bounds%!(EXTRA string=进程别名)"
        );
        assert_eq!(e.render(Lang::Zh), "'进程别名' 数据越界");
    }

    #[test]
    fn double_wrap_matches_bk_cmdb() {
        let inner = CcError::with(code::PARAMS_NEED_SET, "进程别名");
        let core = CcError::wrap(code::PARAMS_IS_INVALID, inner);
        let proc = CcError::wrap(code::PARAMS_IS_INVALID, core);
        assert_eq!(
            proc.render(Lang::En),
            "'''进程别名' unassigned' the parameter is invalid or does not exist' the parameter is invalid or does not exist"
        );
        assert_eq!(
            proc.render(Lang::Zh),
            "'''进程别名' 未赋值' 参数无效或不存在' 参数无效或不存在"
        );
    }

    #[test]
    fn exceed_limit_keeps_leading_space() {
        let e = CcError::new(
            code::EXCEED_LIMIT,
            vec![Arg::Str("create process instances".into()), Arg::Int(100)],
        );
        assert_eq!(
            e.render(Lang::En),
            " create process instances exceed the limit 100"
        );
    }

    #[test]
    fn raw_is_verbatim() {
        let e = CcError::raw(code::PARAMS_IS_INVALID, "not set processes");
        assert_eq!(e.render(Lang::Zh), "not set processes");
    }

    #[test]
    fn int_slices_and_recoded() {
        let e = CcError::new(code::HOST_MODULE_NOT_MATCH, vec![Arg::Ints(vec![11, 12])]);
        assert_eq!(
            e.render(Lang::En),
            "Operation failed, the following host does not belong to the target module: [%!s(int64=11) %!s(int64=12)]"
        );
        assert_eq!(sprintf("%v", &[Rendered::Ints(vec![1, 2])]), "[1 2]");
        let r = CcError::recode(
            code::PARAMS_INVALID,
            CcError::plain(code::PROC_BIND_PORT_NOT_SET),
        );
        assert_eq!(r.code, code::PARAMS_INVALID);
        assert_eq!(
            r.render(Lang::Zh),
            "服务实例的进程绑定信息[端口]未正确设置，请检查后重试"
        );
    }

    #[test]
    fn missing_argument() {
        assert_eq!(sprintf("a %s b", &[]), "a %!s(MISSING) b");
    }
}
