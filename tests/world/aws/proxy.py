"""The project's AWS proxy, in front of moto (test infrastructure): where moto is kinder than AWS,
the proxy makes it as strict. Every test's AWS traffic goes through one.

- Target health: moto's load balancers have no data plane and call every target healthy at once.
  DescribeTargetHealth answers with each registered target's health from the ALB data plane's
  view (tests/world/alb, --target-health FILE): initial, healthy, unhealthy, draining, unused,
  with AWS's reason codes; a target it has not checked (none runs, or it has not read the target
  yet) is `initial`.
- Faults: throttling (EC2 RequestLimitExceeded, ELB/other Throttling, JSON ThrottlingException),
  HTTP 500/503, dropped connections, added latency, at given rates, optionally only for named
  operations. Faults are injected *before* forwarding, so a failed call never took effect (moto
  does not honour idempotency tokens the way AWS does).

- Strictness rules (always on; --no-strict turns them all off): what moto accepts and AWS
  refuses is refused with AWS's error: deleting a security group or subnet still in use,
  detaching the internet gateway of a VPC with public addresses, an internet-facing load
  balancer in a VPC with no internet gateway, oversized SSM parameters; objects just created are
  not found for --consistency-delay seconds (eventual consistency); RunInstances is idempotent by
  ClientToken; EC2 refuses an instance profile that does not exist, has no role, or got its role
  less than --profile-delay seconds ago, and gives it to every instance of a launch; ECR's
  GetAuthorizationToken issues registry tokens of the world's own, valid --ecr-token-seconds,
  to callers whose policies allow it (see tests/world/ecr); an instance role writes to
  CloudWatch Logs only where its policies allow it; ACM issues a certificate only once the
  CNAME records of its DNS validation exist in Route 53, signed by the world's CA, and a
  listener refuses one not issued yet.

Every request is logged as one line `<service>:<Operation> <outcome>` to --log, which tests
count to choose kill points. Outcomes: ok, dropped, throttled, error, refused (a strictness rule).

usage: proxy.py --port P --target URL --log FILE [--target-health FILE]
                [--throttle R] [--error R] [--drop R] [--latency-ms N] [--seed N] [--ops Op1,Op2]
                [--no-strict] [--consistency-delay SECONDS] [--profile-delay SECONDS]
                [--ecr-token-seconds SECONDS] [--acm-issue-seconds SECONDS] [--world DIR]
--ops limits the faults (not the latency) to those operations, e.g. RunInstances,CreateTags.
"""
import argparse
import fnmatch
import json
import os
import random
import re
import threading
import time
import urllib.parse
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import boto3
from botocore.exceptions import ClientError

ARGS = None
COUNTS = {}
LOCK = threading.Lock()


def operation(headers, body):
    target = headers.get("X-Amz-Target")
    if target:
        return target.split(".")[-1]
    if body:
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0]
    return "?"


def service(headers):
    m = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", headers.get("Authorization", ""))
    return m.group(1) if m else "?"


def throttle_response(svc):
    if svc == "ec2":
        body = ("<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
                "</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>")
        return 503, "text/xml", body
    if svc in JSON_SERVICES:
        return 400, "application/x-amz-json-1.1", '{"__type":"ThrottlingException","message":"Rate exceeded"}'
    body = ("<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
            "</Error><RequestId>fault-proxy</RequestId></ErrorResponse>")
    return 400, "text/xml", body


def error_response(svc):
    if svc in JSON_SERVICES:
        return 500, "application/x-amz-json-1.1", '{"__type":"InternalServerError","message":"fault proxy"}'
    if svc == "ec2":
        body = ("<Response><Errors><Error><Code>InternalError</Code><Message>fault proxy</Message></Error>"
                "</Errors><RequestID>fault-proxy</RequestID></Response>")
        return 500, "text/xml", body
    body = ("<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code><Message>fault proxy"
            "</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>")
    return 503, "text/xml", body


ELB_XMLNS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
# The services whose API speaks JSON (X-Amz-Target), and answers errors in JSON.
JSON_SERVICES = ("ssm", "logs", "acm", "ecr")
ElementTree.register_namespace("", ELB_XMLNS)


def target_health(body, moto_answer):
    """moto's DescribeTargetHealth answer, with each target's health from the data plane's view:
    what moto calls healthy at once, the data plane has checked (or not yet: `initial`)."""
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    arn = form.get("TargetGroupArn", [""])[0]
    try:
        with open(ARGS.target_health) as f:
            view = json.load(f).get(arn)
    except (OSError, ValueError, TypeError):
        view = None
    ns = {"e": ELB_XMLNS}
    root = ElementTree.fromstring(moto_answer)
    members = root.findall(".//e:TargetHealthDescriptions/e:member", ns)
    listed = []
    for m in members:
        target = m.find("e:Target/e:Id", ns).text
        port = m.find("e:Target/e:Port", ns).text
        listed.append(target)
        state = m.find("e:TargetHealth/e:State", ns).text
        if state in ("unused", "draining"):  # moto's own answer for what is not registered
            continue
        h = (view or {}).get(target) or NOT_CHECKED
        set_health(m, h, ns)
    # Targets the data plane still drains, deregistered in moto already.
    asked = [v[0] for k, v in form.items() if k.startswith("Targets.member.") and k.endswith(".Id")]
    container = root.find(".//e:TargetHealthDescriptions", ns)
    for target, h in sorted((view or {}).items()):
        if h["State"] == "draining" and target not in listed and (not asked or target in asked):
            m = ElementTree.SubElement(container, f"{{{ELB_XMLNS}}}member")
            ElementTree.SubElement(m, f"{{{ELB_XMLNS}}}HealthCheckPort").text = str(h["Port"])
            t = ElementTree.SubElement(m, f"{{{ELB_XMLNS}}}Target")
            ElementTree.SubElement(t, f"{{{ELB_XMLNS}}}Id").text = target
            ElementTree.SubElement(t, f"{{{ELB_XMLNS}}}Port").text = str(h["Port"])
            set_health(m, h, ns)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=False)


# A target nothing has checked: no data plane runs, or it has not read the target group yet.
NOT_CHECKED = {"State": "initial", "Reason": "Elb.RegistrationInProgress",
               "Description": "Target registration is in progress"}


def set_health(member, h, ns):
    th = member.find("e:TargetHealth", ns)
    if th is None:
        th = ElementTree.SubElement(member, f"{{{ELB_XMLNS}}}TargetHealth")
    for child in list(th):
        th.remove(child)
    for key in ("State", "Reason", "Description"):
        if key in h:
            ElementTree.SubElement(th, f"{{{ELB_XMLNS}}}{key}").text = h[key]


# ---------------------------------------------------------------------------------------------
# Strictness rules: where moto accepts a request that AWS refuses, the proxy refuses it with
# AWS's error and never forwards it. Each rule reads one request (a Call) and returns None, or
# the (code, message) AWS answers with. A rule may ask moto itself (--target) to decide.


class Call:
    """One request as the rules read it: its parameters, and who sends it where."""

    def __init__(self, headers, body, svc, op):
        self.svc, self.op = svc, op
        m = re.search(r"Credential=([^/]+)/[^/]+/([^/]+)/", headers.get("Authorization", ""))
        self.key, self.region = m.groups() if m else ("testing", "us-east-1")
        try:
            if headers.get("X-Amz-Target"):
                self.params = json.loads(body or b"{}")
            else:
                form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
                self.params = {k: v[0] for k, v in form.items()}
        except ValueError:
            self.params = {}

    def get(self, name, default=None):
        return self.params.get(name, default)

    def listed(self, pattern):
        """The values of the parameters whose names match pattern, e.g. `InstanceId\\.\\d+`."""
        return [v for k, v in self.params.items() if re.fullmatch(pattern, k)]


CLIENTS = {}
CLIENTS_LOCK = threading.Lock()


def aws(call, service):
    """A boto3 client of moto itself, as the caller: same access key (moto's account) and region."""
    key = (service, call.key, call.region)
    with CLIENTS_LOCK:  # a boto3 session is not thread-safe; its clients are
        if key not in CLIENTS:
            CLIENTS[key] = boto3.session.Session().client(
                service, endpoint_url=ARGS.target, region_name=call.region,
                aws_access_key_id=call.key, aws_secret_access_key="testing")
        return CLIENTS[key]


LIVE = ["pending", "running", "shutting-down", "stopping", "stopped"]  # all but terminated


def instances(call, name, values, states=LIVE):
    pages = aws(call, "ec2").get_paginator("describe_instances").paginate(Filters=[
        {"Name": name, "Values": values}, {"Name": "instance-state-name", "Values": states}])
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


def interfaces(call, name, value):
    """Network interfaces, without those of terminated instances: AWS deletes an instance's
    interface with it, moto keeps it attached."""
    pages = aws(call, "ec2").get_paginator("describe_network_interfaces").paginate(
        Filters=[{"Name": name, "Values": [value]}])
    enis = [e for page in pages for e in page["NetworkInterfaces"]]
    attached = [e["Attachment"]["InstanceId"] for e in enis if "InstanceId" in e.get("Attachment", {})]
    ended = set()
    if attached:
        ended = {i["InstanceId"] for i in instances(call, "instance-id", attached, ["terminated"])}
    return [e for e in enis if e.get("Attachment", {}).get("InstanceId") not in ended]


def load_balancers(call):
    pages = aws(call, "elbv2").get_paginator("describe_load_balancers").paginate()
    return [lb for page in pages for lb in page["LoadBalancers"]]


def security_group_in_use(call):
    """Rule 1. AWS refuses to delete a security group that another group's rule references, or
    that an instance or a network interface (a load balancer's too) uses: DependencyViolation
    (EC2 API reference, DeleteSecurityGroup). moto deletes it anyway."""
    group = call.get("GroupId")
    if not group:  # by GroupName: default VPC only, not used here
        return None
    ec2 = aws(call, "ec2")
    others = [g for page in ec2.get_paginator("describe_security_groups").paginate()
              for g in page["SecurityGroups"] if g["GroupId"] != group]
    referenced = any(pair.get("GroupId") == group for g in others
                     for rule in g.get("IpPermissions", []) + g.get("IpPermissionsEgress", [])
                     for pair in rule.get("UserIdGroupPairs", []))
    if (referenced or instances(call, "instance.group-id", [group]) or interfaces(call, "group-id", group)
            or any(group in lb.get("SecurityGroups", []) for lb in load_balancers(call))):
        return "DependencyViolation", f"resource {group} has a dependent object"
    return None


def subnet_in_use(call):
    """Rule 2. AWS refuses to delete a subnet that an instance or a load balancer is in:
    DependencyViolation (EC2 API reference, DeleteSubnet: "You must terminate all running
    instances in the subnet before you can delete the subnet"). moto deletes it anyway."""
    subnet = call.get("SubnetId")
    lbs = [lb for lb in load_balancers(call)
           if any(z.get("SubnetId") == subnet for z in lb.get("AvailabilityZones", []))]
    if instances(call, "subnet-id", [subnet]) or lbs:
        return "DependencyViolation", f"The subnet '{subnet}' has dependencies and cannot be deleted."
    return None


def gateway_has_public_addresses(call):
    """Rule 3. AWS refuses to detach a VPC's internet gateway while public addresses are mapped in
    the VPC: an instance's public IP, an internet-facing load balancer's (VPC user guide,
    "Detach an internet gateway": disassociate public and Elastic IP addresses first). moto
    detaches it anyway."""
    vpc = call.get("VpcId")
    public = [i for i in instances(call, "vpc-id", [vpc]) if i.get("PublicIpAddress")]
    facing = [lb for lb in load_balancers(call)
              if lb.get("VpcId") == vpc and lb.get("Scheme", "internet-facing") == "internet-facing"]
    if public or facing:
        return "DependencyViolation", (f"Network {vpc} has some mapped public address(es). Please unmap "
                                       "those public address(es) before detaching the gateway.")
    return None


def parameter_too_large(call):
    """Rule 6. A standard parameter's value holds up to 4 KB, an advanced one's up to 8 KB (SSM API
    reference, PutParameter: Value, Tier); Intelligent-Tiering makes a larger one advanced. AWS's
    message says characters, its documentation KB: counted here in bytes of UTF-8, the same for
    ASCII. moto stores any size."""
    size = len(str(call.get("Value", "")).encode("utf-8"))
    if call.get("Tier", "Standard") == "Standard" and size > 4096:
        return "ValidationException", (
            "Standard tier parameters support a maximum parameter value of 4096 characters. To create a "
            "larger parameter value, upgrade the parameter to use the advanced-parameter tier. For more "
            "information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/"
            "parameter-store-advanced-parameters.html")
    if size > 8192:
        return "ValidationException", ("1 validation error detected: Value at 'value' failed to satisfy "
                                       "constraint: Member must have length less than or equal to 8192")
    return None


def load_balancer_without_gateway(call):
    """Rule 7. An internet-facing load balancer (the default scheme) needs an internet gateway
    attached to its VPC: AWS refuses it with InvalidSubnet ("VPC vpc-… has no internet
    gateway", ELBv2 CreateLoadBalancer). moto creates it."""
    subnets = call.listed(r"Subnets\.member\.\d+") + call.listed(r"SubnetMappings\.member\.\d+\.SubnetId")
    if call.get("Scheme", "internet-facing") != "internet-facing" or not subnets:
        return None
    ec2 = aws(call, "ec2")
    vpc = ec2.describe_subnets(SubnetIds=subnets[:1])["Subnets"][0]["VpcId"]
    gateways = ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])["InternetGateways"]
    if not gateways:
        return "InvalidSubnet", f"VPC {vpc} has no internet gateway"
    return None


# Rule 8, instance profiles (IAM user guide, "Troubleshooting IAM roles for Amazon EC2" and
# "Changes that I make are not always immediately visible"): EC2 refuses a profile it cannot use
# yet with InvalidParameterValue "Invalid IAM Instance Profile name/ARN" — one that does not exist
# (moto: IAM's NoSuchEntity), one with no role, and for a while one just created or given its
# role (moto: usable at once). PROFILES_SEEN: profile name -> when it got its role.
PROFILES_SEEN = {}


def profile_named(call):
    """The instance profile's name a request names (by name or by ARN), or None."""
    for key in ("IamInstanceProfile.Name", "IamInstanceProfile.Arn"):
        value = call.get(key)
        if value:
            return value.rsplit("/", 1)[-1], key.split(".")[-1].lower(), value
    return None


def profile_not_usable(call):
    named = profile_named(call)
    if not named:
        return None
    name, by, value = named
    refusal = ("InvalidParameterValue",
               f"Value ({value}) for parameter iamInstanceProfile.{by} is invalid. "
               f"Invalid IAM Instance Profile {'name' if by == 'name' else 'ARN'}")
    try:
        profile = aws(call, "iam").get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except ClientError:
        return refusal
    if not profile["Roles"]:
        return refusal
    with LOCK:
        since = PROFILES_SEEN.get(name)
    if since is not None and time.monotonic() - since < ARGS.profile_delay:
        return refusal
    return None


def remember_profile(call, answer):
    """Rule 8: when a profile got its role (from then on EC2 sees it after --profile-delay)."""
    if (call.svc, call.op) == ("iam", "AddRoleToInstanceProfile"):
        with LOCK:
            PROFILES_SEEN[call.get("InstanceProfileName")] = time.monotonic()


def profile_on_every_instance(call, answer):
    """Rule 8 too: RunInstances gives the profile to every instance it launches (moto: to the
    first only, when it launches several)."""
    if (call.svc, call.op) != ("ec2", "RunInstances") or not profile_named(call):
        return
    spec = {"Arn": call.get("IamInstanceProfile.Arn")} if call.get("IamInstanceProfile.Arn") \
        else {"Name": call.get("IamInstanceProfile.Name")}
    ec2 = aws(call, "ec2")
    for item in ElementTree.fromstring(answer).findall("{*}instancesSet/{*}item"):
        if item.find("{*}iamInstanceProfile") is None:
            ec2.associate_iam_instance_profile(IamInstanceProfile=spec,
                                               InstanceId=item.findtext("{*}instanceId"))


# Rule 9, ECR's registry tokens (ECR user guide, "Private registry authentication"): the token
# GetAuthorizationToken gives is the registry's password for user AWS, valid 12 hours
# (--ecr-token-seconds to shorten it in a test), and only a caller whose policies allow the
# action gets one. moto returns one constant token, expired in 2015, to anyone. The tokens issued
# are written to --world/ecr-tokens (sha256 of the token -> expiry), where the registry's front
# (tests/world/ecr/front.py) checks them; the callers known from --world/instance-credentials are
# instance roles (tests/world/nodes/imds.py), whose policies are read from IAM.
def role_allows(call, role, action, resource=None):
    """Whether one of the role's policies allows `action` (on `resource`, an ARN, when given:
    IAM's wildcards `*` and `?` in a statement's Resource)."""
    iam = aws(call, "iam")
    documents = [iam.get_role_policy(RoleName=role, PolicyName=p)["PolicyDocument"]
                 for p in iam.list_role_policies(RoleName=role)["PolicyNames"]]
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        documents.append(iam.get_policy_version(PolicyArn=attached["PolicyArn"],
                                                VersionId=policy["DefaultVersionId"])["PolicyVersion"]["Document"])
    for doc in documents:
        doc = json.loads(urllib.parse.unquote(doc)) if isinstance(doc, str) else doc
        statements = doc.get("Statement", [])
        for st in statements if isinstance(statements, list) else [statements]:
            actions = st.get("Action", [])
            actions = actions if isinstance(actions, list) else [actions]
            resources = st.get("Resource", [])
            resources = resources if isinstance(resources, list) else [resources]
            if st.get("Effect") == "Allow" and any(
                    a == "*" or a == action or (a.endswith("*") and action.startswith(a[:-1])) for a in actions) \
                    and (resource is None or any(fnmatch.fnmatchcase(resource, r) for r in resources)):
                return True
    return False


def instance_caller(call):
    """{instance, role} when the caller signs with an instance role's keys (imds.py), else None."""
    known = os.path.join(ARGS.world, "instance-credentials", call.key) if ARGS.world else None
    if not known or not os.path.exists(known):
        return None
    with open(known) as f:
        return json.load(f)


def denied(who, action, resource):
    return ("AccessDeniedException",
            f"User: arn:aws:sts::123456789012:assumed-role/{who['role']}/{who['instance']} is not authorized "
            f"to perform: {action} on resource: {resource} because no identity-based policy allows the "
            f"{action} action")


# Rule 10, the nodes' writes to CloudWatch Logs (Docker's awslogs driver signs with the instance's
# role): allowed only when the role's policies allow the action on the log stream's ARN, else
# AccessDeniedException, as IAM decides. moto lets anyone write anywhere.
def logs_write_allowed(call):
    who = instance_caller(call)
    if not who:
        return None
    action = f"logs:{call.op}"
    resource = (f"arn:aws:logs:{call.region}:123456789012:log-group:{call.get('logGroupName', '')}"
                f":log-stream:{call.get('logStreamName', '')}")
    return None if role_allows(call, who["role"], action, resource) else denied(who, action, resource)


def authorization_token(call):
    """Rule 9: a token of the world's own for an allowed caller, else AccessDeniedException."""
    import base64
    import hashlib
    import secrets
    who = instance_caller(call)
    if who and not role_allows(call, who["role"], "ecr:GetAuthorizationToken"):
        code, message = denied(who, "ecr:GetAuthorizationToken", "*")
        return 400, "application/x-amz-json-1.1", json.dumps({"__type": code, "message": message})
    token = secrets.token_urlsafe(48)
    expires = time.time() + ARGS.ecr_token_seconds
    if ARGS.world:
        tokens = os.path.join(ARGS.world, "ecr-tokens")
        os.makedirs(tokens, exist_ok=True)
        with open(os.path.join(tokens, hashlib.sha256(token.encode()).hexdigest()), "w") as f:
            f.write(f"{expires}\n{token}\n")  # the token too: tests search every output for it
    return 200, "application/x-amz-json-1.1", json.dumps({"authorizationData": [{
        "authorizationToken": base64.b64encode(f"AWS:{token}".encode()).decode(),
        "expiresAt": expires,
        "proxyEndpoint": f"https://123456789012.dkr.ecr.{call.region}.amazonaws.com"}]})


# Rule 11, ACM's DNS validation (ACM user guide, "DNS validation"; ELB's "HTTPS listeners"): a
# certificate ACM issues (RequestCertificate) stays PENDING_VALIDATION until, for each of its
# domains, the CNAME record ACM asks for exists in a public hosted zone of Route 53; then it is
# ISSUED --acm-issue-seconds after ACM first found them all. The record is ACM's own for an
# account and a domain (a wildcard shares its base domain's). An issued certificate is the
# world's: signed by the world's ACM CA (--world/acm/ca.crt, made once), its key kept in
# --world/acm/<id>.key for the ALB data plane (an ALB gets it from ACM; nobody else does). Until
# then GetCertificate answers RequestInProgressException and a listener refuses it
# (CertificateNotFound). moto: one record for every domain of every certificate, ISSUED 60 s
# after the request whatever DNS holds, and a listener takes a pending certificate.
# VALIDATED: certificate ARN -> when ACM first found its records.
VALIDATED = {}


def token(*parts, letters=False):
    import hashlib
    digest = hashlib.sha256(":".join(parts).encode()).hexdigest()
    return "".join(chr(ord("a") + int(c, 16) % 26) for c in digest[:10]) if letters else digest[:32]


def validation_record(account, domain):
    """The CNAME ACM asks for to validate `domain` in `account`: (name, value), both absolute."""
    base = domain[2:] if domain.startswith("*.") else domain
    base = base.lower().rstrip(".")
    return (f"_{token(account, base, 'name')}.{base}.",
            f"_{token(account, base, 'value')}.{token(account, base, letters=True)}.acm-validations.aws.")


def dns_holds(call, name, value):
    """Whether a public hosted zone of Route 53 holds the CNAME name -> value."""
    r53 = aws(call, "route53")
    for zone in r53.list_hosted_zones()["HostedZones"]:
        zone_name = zone["Name"].lower()
        if zone.get("Config", {}).get("PrivateZone") or not ("." + name).endswith("." + zone_name):
            continue
        found = r53.list_resource_record_sets(HostedZoneId=zone["Id"], StartRecordName=name,
                                              StartRecordType="CNAME", MaxItems="1")["ResourceRecordSets"]
        for record in found:
            if record["Name"].lower().rstrip(".") == name.rstrip(".") and record["Type"] == "CNAME" and any(
                    v["Value"].lower().rstrip(".") == value.rstrip(".") for v in record.get("ResourceRecords", [])):
                return True
    return False


def acm_path(arn, ext):
    return os.path.join(ARGS.world, "acm", f"{arn.rsplit('/', 1)[-1]}.{ext}")


def acm_validation(call, arn):
    """A certificate ACM issues, as ACM has it: {status, domains: [(domain, record, done)]}; None
    for one it does not issue (imported) or moto does not know."""
    try:
        cert = aws(call, "acm").describe_certificate(CertificateArn=arn)["Certificate"]
    except ClientError:
        return None
    if cert.get("Type") != "AMAZON_ISSUED":
        return None
    account = arn.split(":")[4]
    domains = list(dict.fromkeys([cert["DomainName"]] + cert.get("SubjectAlternativeNames", [])))
    with LOCK:
        since = VALIDATED.get(arn)
    checked = []
    for d in domains:
        record = validation_record(account, d)
        checked.append((d, record, since is not None or dns_holds(call, *record)))
    if since is None and all(done for _, _, done in checked):
        with LOCK:
            since = VALIDATED.setdefault(arn, time.monotonic())
    issued = since is not None and time.monotonic() - since >= ARGS.acm_issue_seconds
    if issued and ARGS.world and not os.path.exists(acm_path(arn, "crt")):
        issue_certificate(arn, domains)
    return {"status": "ISSUED" if issued else "PENDING_VALIDATION", "domains": checked}


def world_ca():
    """The world's ACM CA (certificate, key), made once per world."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    crt, key = os.path.join(ARGS.world, "acm", "ca.crt"), os.path.join(ARGS.world, "acm", "ca.key")
    if not os.path.exists(crt):
        import datetime
        os.makedirs(os.path.dirname(crt), exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "infra test world ACM CA")])
        ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
              .not_valid_after(now + datetime.timedelta(days=3650))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
        with open(key, "wb") as f:
            f.write(ca_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                         serialization.NoEncryption()))
        os.chmod(key, 0o600)
        with open(crt, "wb") as f:
            f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(crt, "rb") as f, open(key, "rb") as k:
        return (x509.load_pem_x509_certificate(f.read()),
                serialization.load_pem_private_key(k.read(), password=None))


def issue_certificate(arn, domains):
    """The certificate ACM issues: for the domains, 395 days (ACM's 13 months), by the world's
    ACM CA; its key beside it for the data plane."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    with LOCK:
        ca, ca_key = world_ca()
        now = datetime.datetime.now(datetime.timezone.utc)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domains[0])]))
                .issuer_name(ca.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now)
                .not_valid_after(now + datetime.timedelta(days=395))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in domains]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        with open(acm_path(arn, "key"), "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption()))
        os.chmod(acm_path(arn, "key"), 0o600)
        with open(acm_path(arn, "crt") + ".new", "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        os.replace(acm_path(arn, "crt") + ".new", acm_path(arn, "crt"))


def certificate_pending(call):
    """Rule 11: a listener refuses a certificate ACM has not issued; GetCertificate gives none."""
    if call.svc == "acm":
        v = acm_validation(call, call.get("CertificateArn", ""))
        if v and v["status"] != "ISSUED":
            return ("RequestInProgressException",
                    f"Certificate '{call.get('CertificateArn')}' is still being issued: it is {v['status']}")
        return None
    for arn in call.listed(r"Certificates\.member\.\d+\.CertificateArn"):
        v = acm_validation(call, arn)
        if v and v["status"] != "ISSUED":
            return "CertificateNotFound", f"Certificate '{arn}' not found"
    return None


def acm_answer(call, data):
    """Rule 11: DescribeCertificate and GetCertificate as ACM answers them."""
    if call.op not in ("DescribeCertificate", "GetCertificate"):
        return data
    arn = call.get("CertificateArn", "")
    v = acm_validation(call, arn)
    if not v:
        return data
    answer = json.loads(data)
    if call.op == "GetCertificate":  # issued (certificate_pending refused it otherwise)
        with open(acm_path(arn, "crt")) as f, open(os.path.join(ARGS.world, "acm", "ca.crt")) as ca:
            return json.dumps({"Certificate": f.read(), "CertificateChain": ca.read()}).encode()
    cert = answer["Certificate"]
    cert["Status"] = v["status"]
    cert["DomainValidationOptions"] = [
        {"DomainName": d, "ValidationDomain": d, "ValidationMethod": "DNS",
         "ValidationStatus": "SUCCESS" if v["status"] == "ISSUED" else "PENDING_VALIDATION",
         "ResourceRecord": {"Name": name, "Type": "CNAME", "Value": value}}
        for d, (name, value), _ in v["domains"]]
    if v["status"] == "ISSUED" and ARGS.world:
        from cryptography import x509
        with open(acm_path(arn, "crt"), "rb") as f:
            issued = x509.load_pem_x509_certificate(f.read())
        cert.update(NotBefore=issued.not_valid_before_utc.timestamp(), NotAfter=issued.not_valid_after_utc.timestamp(),
                    Serial=format(issued.serial_number, "x"), Issuer=issued.issuer.rfc4514_string())
    return json.dumps(answer).encode()


RULES = {
    ("ec2", "RunInstances"): profile_not_usable,
    ("ec2", "AssociateIamInstanceProfile"): profile_not_usable,
    ("ec2", "ReplaceIamInstanceProfileAssociation"): profile_not_usable,
    ("ec2", "DeleteSecurityGroup"): security_group_in_use,
    ("ec2", "DeleteSubnet"): subnet_in_use,
    ("ec2", "DetachInternetGateway"): gateway_has_public_addresses,
    ("ssm", "PutParameter"): parameter_too_large,
    ("elasticloadbalancing", "CreateLoadBalancer"): load_balancer_without_gateway,
    ("logs", "CreateLogStream"): logs_write_allowed,
    ("logs", "PutLogEvents"): logs_write_allowed,
    ("acm", "GetCertificate"): certificate_pending,
    ("elasticloadbalancing", "CreateListener"): certificate_pending,
    ("elasticloadbalancing", "ModifyListener"): certificate_pending,
    ("elasticloadbalancing", "AddListenerCertificates"): certificate_pending,
}

# Rule 4, eventual consistency (EC2 API reference, "Eventual consistency in the Amazon EC2 API";
# ELB the same): for a while after an object is created, requests naming it answer NotFound, and
# list calls leave it out. moto knows every object at once. CREATED: id -> (kind, when created).
CREATED = {}
# Operation -> where in its answer the new object's id is, and the kind of object.
CREATES = {
    ("ec2", "RunInstances"): ("instance", "{*}instancesSet/{*}item/{*}instanceId"),
    ("ec2", "CreateSecurityGroup"): ("group", "{*}groupId"),
    ("elasticloadbalancing", "CreateTargetGroup"): ("target group", ".//{*}TargetGroupArn"),
}
# Operation -> the parameters that name existing objects.
REFERENCES = {
    ("ec2", "DescribeInstances"): r"InstanceId\.\d+",
    ("ec2", "CreateTags"): r"ResourceId\.\d+",
    ("ec2", "ModifyInstanceAttribute"): r"InstanceId",
    ("ec2", "TerminateInstances"): r"InstanceId\.\d+",
    ("ec2", "AuthorizeSecurityGroupIngress"): r"GroupId",
    ("ec2", "DescribeSecurityGroups"): r"GroupId\.\d+",
    ("elasticloadbalancing", "RegisterTargets"): r"TargetGroupArn|Targets\.member\.\d+\.Id",
    ("elasticloadbalancing", "ModifyTargetGroupAttributes"): r"TargetGroupArn",
    ("elasticloadbalancing", "DescribeTargetHealth"): r"TargetGroupArn",
    ("elasticloadbalancing", "CreateListener"):
        r"DefaultActions\.member\.\d+\.(ForwardConfig\.TargetGroups\.member\.\d+\.)?TargetGroupArn",
}


def unseen(ids):
    """Those of ids created too recently to be seen yet, with their kinds."""
    since = time.monotonic() - ARGS.consistency_delay
    with LOCK:
        return [(i, CREATED[i][0]) for i in ids if i in CREATED and CREATED[i][1] > since]


def not_yet_visible(call):
    """Rule 4: a request naming an object created a moment ago gets AWS's NotFound."""
    pattern = REFERENCES.get((call.svc, call.op))
    new = {}  # kind -> ids
    for i, kind in unseen(call.listed(pattern)) if pattern else []:
        new.setdefault(kind, []).append(i)
    if "target group" in new:  # RegisterTargets: the group is looked up before its targets
        return "TargetGroupNotFound", f"Target groups '{', '.join(new['target group'])}' not found"
    if "group" in new:
        return "InvalidGroup.NotFound", f"The security group '{', '.join(new['group'])}' does not exist"
    ids = new.get("instance", [])
    if ids and call.svc == "elasticloadbalancing":
        return "InvalidTarget", "The following targets are not valid instances: " + ", ".join(map(repr, ids))
    if len(ids) == 1:
        return "InvalidInstanceID.NotFound", f"The instance ID '{ids[0]}' does not exist"
    if ids:
        return "InvalidInstanceID.NotFound", f"The instance IDs '{', '.join(ids)}' do not exist"
    return None


def remember_created(call, answer):
    """Rule 4: the ids moto's answer to a create gives, not to be seen for a while."""
    kind, path = CREATES.get((call.svc, call.op), (None, None))
    if kind:
        ids = [e.text for e in ElementTree.fromstring(answer).findall(path)]
        with LOCK:
            CREATED.update((i, (kind, time.monotonic())) for i in ids)


def hide_created(call, answer):
    """Rule 4: DescribeInstances naming no instance (by filters, or all) leaves out the instances
    created too recently, as AWS's lagging list does: their reservations too, once empty."""
    if (call.svc, call.op) != ("ec2", "DescribeInstances") or call.listed(r"InstanceId\.\d+"):
        return answer
    root = ElementTree.fromstring(answer)
    for reservations in root.findall("{*}reservationSet"):
        for reservation in reservations.findall("{*}item"):
            found = reservation.find("{*}instancesSet")
            for instance in found.findall("{*}item"):
                if unseen([instance.findtext("{*}instanceId")]):
                    found.remove(instance)
            if not len(found):
                reservations.remove(reservation)
    namespace = root.tag[1:].split("}")[0] if root.tag.startswith("{") else None
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=namespace)


# Rule 5: RunInstances is idempotent by ClientToken (EC2 API reference, "Ensuring idempotency in
# Amazon EC2 API requests"): a retry with the same token launches nothing and gets the first
# answer again, the same reservation. moto launches again. Both by (access key, region, token).
LAUNCHES = {}
LAUNCH_LOCKS = {}


def run_instances_once(call, forward):
    key = (call.key, call.region, call.get("ClientToken"))
    with LOCK:
        lock = LAUNCH_LOCKS.setdefault(key, threading.Lock())
    with lock:  # a concurrent retry waits for the first launch's answer
        if key not in LAUNCHES:
            status, headers, data = forward()
            if status != 200:  # nothing launched: the next try launches
                return status, headers, data
            remember_created(call, data)
            profile_on_every_instance(call, data)
            LAUNCHES[key] = (status, headers, data)
        return LAUNCHES[key]


def strict_refusal(call):
    """The (code, message) of the first rule refusing the call, or None."""
    for rule in (not_yet_visible, RULES.get((call.svc, call.op))):
        try:
            refusal = rule(call) if rule else None
        except ClientError:  # what the rule asked moto about is wrong: moto answers the call itself
            refusal = None
        if refusal:
            return refusal
    return None


def strict_forward(call, forward):
    """forward() (to moto), the way AWS would take the call: RunInstances once per ClientToken;
    what is created stays unseen for a while."""
    if (call.svc, call.op) == ("ecr", "GetAuthorizationToken"):
        status, ctype, text = authorization_token(call)
        return status, [("Content-Type", ctype)], text.encode()
    if (call.svc, call.op) == ("ec2", "RunInstances") and call.get("ClientToken"):
        return run_instances_once(call, forward)
    status, headers, data = forward()
    if status == 200:
        remember_created(call, data)
        remember_profile(call, data)
        profile_on_every_instance(call, data)
        data = hide_created(call, data)
        if call.svc == "acm":
            data = acm_answer(call, data)
    return status, headers, data


def refusal_response(svc, code, message):
    """AWS's error answer, shaped as the faults' are: JSON for the services that speak JSON."""
    if svc in JSON_SERVICES:
        return 400, "application/x-amz-json-1.1", json.dumps({"__type": code, "message": message})
    if svc == "ec2":
        return 400, "text/xml", (f"<Response><Errors><Error><Code>{code}</Code><Message>{escape(message)}"
                                 "</Message></Error></Errors><RequestID>strict-proxy</RequestID></Response>")
    return 400, "text/xml", (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
                             f"<Message>{escape(message)}</Message></Error>"
                             "<RequestId>strict-proxy</RequestId></ErrorResponse>")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        svc, op = service(self.headers), operation(self.headers, body)
        # The n-th request of an operation always gets the same roll, whatever the interleaving of
        # concurrent requests: runs are repeatable.
        with LOCK:
            COUNTS[op] = COUNTS.get(op, 0) + 1
            roll = random.Random(f"{ARGS.seed}:{op}:{COUNTS[op]}").random()
        if ARGS.latency_ms:
            threading.Event().wait(ARGS.latency_ms / 1000)
        outcome = "ok"
        if ARGS.ops and op not in ARGS.ops:
            roll = 1.0
        if roll < ARGS.drop:
            outcome = "dropped"
        elif roll < ARGS.drop + ARGS.throttle:
            outcome = "throttled"
        elif roll < ARGS.drop + ARGS.throttle + ARGS.error:
            outcome = "error"
        call = Call(self.headers, body, svc, op) if ARGS.strict else None
        refusal = strict_refusal(call) if call and outcome == "ok" else None
        if refusal:
            outcome = "refused"
        with LOCK, open(ARGS.log, "a") as log:
            log.write(f"{svc}:{op} {outcome}\n")
        if outcome == "dropped":
            self.close_connection = True
            self.connection.close()
            return
        if outcome in ("throttled", "error"):
            status, ctype, text = (throttle_response if outcome == "throttled" else error_response)(svc)
            return self.reply(status, ctype, text.encode())
        if refusal:
            status, ctype, text = refusal_response(svc, *refusal)
            return self.reply(status, ctype, text.encode())
        if call:
            status, headers, data = strict_forward(call, lambda: self.forward(body))
        else:
            status, headers, data = self.forward(body)
        # Only the strict proxy in front of moto knows the data plane's view; a fault proxy in
        # front of it passes the answer through.
        if op == "DescribeTargetHealth" and status == 200 and ARGS.target_health:
            data = target_health(body, data)
        self.reply(status, None, data, headers)

    def forward(self, body):
        """The request, sent to moto (--target): its status, headers and body."""
        target = urllib.parse.urlparse(ARGS.target)
        conn = HTTPConnection(target.hostname, target.port, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        headers = [(k, v) for k, v in resp.getheaders()
                   if k.lower() not in ("connection", "transfer-encoding", "content-length", "server", "date")]
        return resp.status, headers, data

    def reply(self, status, ctype, data, headers=()):
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--target-health")
    p.add_argument("--throttle", type=float, default=0.0)
    p.add_argument("--error", type=float, default=0.0)
    p.add_argument("--drop", type=float, default=0.0)
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ops", type=lambda v: set(v.split(",")), default=set())
    p.add_argument("--no-strict", dest="strict", action="store_false",
                   help="no strictness rules: moto's own answers (to show what moto alone would accept)")
    p.add_argument("--consistency-delay", type=float, default=0.5,
                   help="seconds a new object stays unseen (eventual consistency)")
    p.add_argument("--profile-delay", type=float, default=5.0,
                   help="seconds before EC2 can use an instance profile that just got its role")
    p.add_argument("--ecr-token-seconds", type=float, default=12 * 3600,
                   help="how long a registry token of GetAuthorizationToken is valid")
    p.add_argument("--acm-issue-seconds", type=float, default=5.0,
                   help="how long ACM takes to issue a certificate once its DNS records exist")
    p.add_argument("--world", help="the test world's shared directory (registry tokens, instance credentials, "
                                    "certificates ACM issued)")
    ARGS = p.parse_args()
    ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
