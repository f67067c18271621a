"""Just enough of CloudFormation to evaluate infra/template.yaml and its nested checker.yaml offline:
the intrinsic functions they use (Ref, Fn::Sub, Fn::Join, Fn::Select, Fn::Split, Fn::If, Fn::Equals,
Fn::Not, Fn::And, Fn::Or, Condition, Fn::GetAtt of a nested stack's output), parameter defaults and
pseudo parameters. Used to render the dashboard body and the alarms exactly as CloudFormation would,
so that moto can judge them. Not a general CloudFormation engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

INFRA = Path(__file__).resolve().parents[2] / "infra"
NO_VALUE = object()

_SHORT = {"Ref": "Ref", "Condition": "Condition"}
_TAGS = ["Ref", "Sub", "GetAtt", "If", "Join", "Select", "Split", "Equals", "Not", "And", "Or",
         "Condition", "FindInMap", "Base64", "GetAZs", "ImportValue", "Cidr",
         # Rules-only functions
         "EachMemberEquals", "EachMemberIn", "Contains", "ValueOf", "ValueOfAll", "RefAll"]


class _Loader(yaml.SafeLoader):
    pass


def _make_constructor(tag: str):
    key = _SHORT.get(tag, f"Fn::{tag}")

    def construct(loader: yaml.Loader, node: yaml.Node) -> dict:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {key: value}

    return construct


for _t in _TAGS:
    _Loader.add_constructor(f"!{_t}", _make_constructor(_t))


def load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 - SafeLoader subclass


class Stack:
    """One template with its parameter values; `resource_ref(name)` fakes physical ids/ARNs."""

    def __init__(self, path: Path, parameters: dict[str, Any] | None = None, name: str = "nat-watchdog",
                 region: str = "us-east-1", account: str = "123456789012"):
        self.path = path
        self.template = load(path)
        self.name, self.region, self.account = name, region, account
        self.params: dict[str, Any] = {}
        for key, spec in self.template.get("Parameters", {}).items():
            given = (parameters or {}).get(key, spec.get("Default"))
            if given is None:
                raise KeyError(f"{path.name}: parameter {key} has no value and no default")
            if spec["Type"].startswith("List<") or spec["Type"] == "CommaDelimitedList":
                given = given if isinstance(given, list) else [s for s in str(given).split(",")]
            else:
                given = str(given)
            self.params[key] = given
        self._conditions: dict[str, bool] = {}
        self._children: dict[str, Stack] = {}

    # ------------------------------------------------------------------ references
    def pseudo(self, name: str) -> Any:
        return {"AWS::Region": self.region, "AWS::AccountId": self.account, "AWS::Partition": "aws",
                "AWS::StackName": self.name, "AWS::URLSuffix": "amazonaws.com",
                "AWS::NoValue": NO_VALUE}[name]

    def resource_ref(self, logical: str) -> str:
        res = self.template["Resources"][logical]
        kind = res["Type"]
        if kind == "AWS::Serverless::StateMachine":
            sm_name = self.eval(res["Properties"].get("Name", logical))
            return f"arn:aws:states:{self.region}:{self.account}:stateMachine:{sm_name}"
        if kind == "AWS::Serverless::Function":
            return f"{self.name}-{logical}-ABCDEF123456"
        if kind == "AWS::Logs::LogGroup":
            return self.eval(res["Properties"].get("LogGroupName", f"{self.name}-{logical}"))
        if kind == "AWS::IAM::ManagedPolicy":
            return f"arn:aws:iam::{self.account}:policy/{self.name}-{logical}"
        if kind == "AWS::EC2::SecurityGroup":
            return "sg-0123456789abcdef0"
        return f"{self.name}-{logical}"

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.params:
            return self.params[name]
        return self.resource_ref(name)

    def child(self, logical: str) -> "Stack":
        if logical not in self._children:
            res = self.template["Resources"][logical]
            assert res["Type"] == "AWS::Serverless::Application", logical
            if "Condition" in res and not self.condition(res["Condition"]):
                raise ValueError(f"{logical} is not created (condition {res['Condition']} is false)")
            props = res["Properties"]
            params = {k: self.eval(v) for k, v in props.get("Parameters", {}).items()}
            self._children[logical] = Stack(self.path.parent / props["Location"], params,
                                            name=f"{self.name}-{logical}-XYZ", region=self.region,
                                            account=self.account)
        return self._children[logical]

    def get_att(self, logical: str, attr: str) -> Any:
        if attr.startswith("Outputs."):
            child = self.child(logical)
            return child.eval(child.template["Outputs"][attr.split(".", 1)[1]]["Value"])
        if attr == "Arn":
            kind = self.template["Resources"][logical]["Type"]
            if kind == "AWS::Logs::LogGroup":
                return f"arn:aws:logs:{self.region}:{self.account}:log-group:{self.resource_ref(logical)}:*"
        return f"{self.resource_ref(logical)}.{attr}"

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.eval(self.template["Conditions"][name]))
        return self._conditions[name]

    # ------------------------------------------------------------------ evaluation
    def sub(self, text: str, extra: dict[str, Any]) -> str:
        out, i = [], 0
        while i < len(text):
            start = text.find("${", i)
            if start < 0:
                out.append(text[i:])
                break
            out.append(text[i:start])
            end = text.index("}", start)
            var = text[start + 2:end]
            if var.startswith("!"):
                out.append("${" + var[1:] + "}")
            elif var in extra:
                out.append(str(extra[var]))
            elif "." in var and not var.startswith("AWS::"):
                logical, attr = var.split(".", 1)
                out.append(str(self.get_att(logical, attr)))
            else:
                value = self.ref(var)
                out.append(",".join(value) if isinstance(value, list) else str(value))
            i = end + 1
        return "".join(out)

    def eval(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.eval(n) for n in node]
            return [x for x in items if x is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    extra = {k: self.eval(v) for k, v in arg[1].items()}
                    return self.sub(arg[0], extra)
                return self.sub(arg, {})
            if key == "Fn::Join":
                return arg[0].join(str(x) for x in self.eval(arg[1]))
            if key == "Fn::Select":
                return self.eval(arg[1])[int(self.eval(arg[0]))]
            if key == "Fn::Split":
                return self.eval(arg[1]).split(arg[0])
            if key == "Fn::If":
                return self.eval(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                a, b = (self.eval(x) for x in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.eval(arg[0])
            if key == "Fn::And":
                return all(self.eval(x) for x in arg)
            if key == "Fn::Or":
                return any(self.eval(x) for x in arg)
            if key == "Fn::GetAtt":
                return self.get_att(arg[0], arg[1])
        return {k: v for k, v in ((k, self.eval(v)) for k, v in node.items()) if v is not NO_VALUE}

    # ------------------------------------------------------------------ rules
    def failed_rules(self, value_of_all=None) -> list[str]:
        """AssertDescription of every Rules assertion that fails with these parameters, as CloudFormation
        would report before creating anything. `value_of_all(param_type, attribute, values)` stands in for
        CloudFormation's look-up of a parameter's resources (e.g. each subnet's VpcId)."""
        def ev(node):
            if isinstance(node, dict) and len(node) == 1:
                (key, arg), = node.items()
                if key == "Fn::ValueOfAll":
                    param_type, attribute = arg
                    names = [k for k, spec in self.template["Parameters"].items() if spec["Type"] == f"List<{param_type}>"]
                    return value_of_all(param_type, attribute, self.params[names[0]])
                if key == "Fn::EachMemberEquals":
                    items, value = ev(arg[0]), ev(arg[1])
                    return all(str(i) == str(value) for i in items)
                if key == "Fn::EachMemberIn":
                    items, allowed = ev(arg[0]), ev(arg[1])
                    return all(i in allowed for i in items)
                if key == "Fn::Contains":
                    return ev(arg[1]) in ev(arg[0])
                if key == "Fn::Not":
                    return not ev(arg[0])
                if key == "Fn::And":
                    return all(ev(x) for x in arg)
                if key == "Fn::Or":
                    return any(ev(x) for x in arg)
                if key == "Fn::Equals":
                    return str(ev(arg[0])) == str(ev(arg[1]))
            return self.eval(node)

        failed = []
        for rule in self.template.get("Rules", {}).values():
            if "RuleCondition" in rule and not ev(rule["RuleCondition"]):
                continue
            failed += [a["AssertDescription"] for a in rule["Assertions"] if not ev(a["Assert"])]
        return failed

    # ------------------------------------------------------------------ views
    def resources(self, kind: str | None = None) -> dict[str, dict]:
        """Resources that would be created, properties evaluated."""
        out = {}
        for logical, res in self.template["Resources"].items():
            if kind and res["Type"] != kind:
                continue
            if "Condition" in res and not self.condition(res["Condition"]):
                continue
            out[logical] = {"Type": res["Type"], "Properties": self.eval(res.get("Properties", {})),
                            "Metadata": res.get("Metadata", {})}
        return out

    def created_children(self) -> list["Stack"]:
        return [self.child(logical) for logical in self.resources("AWS::Serverless::Application")]
