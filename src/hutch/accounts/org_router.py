"""Organisation endpoints: the current org, its members and roles, and invitations."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from hutch.accounts.orgs import InvalidInvitation, LastOwner, Member, OrgService
from hutch.accounts.schemas import (
    InvitationAccept,
    InvitationCreate,
    InvitationList,
    InvitationOut,
    MemberList,
    MemberOut,
    MyOrg,
    OrgCreate,
    OrgDetail,
    OrgUpdate,
    RoleChange,
)
from hutch.accounts.sso import SsoService
from hutch.core.errors import Conflict, Forbidden, InvalidField, NotFound, Unauthorized, error_responses
from hutch.core.request_context import client_ip
from hutch.http.authz import CurrentUser, OrgAdmin, OrgOwner, Reader, SignedInUser
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.resources import Resources

router = APIRouter(prefix="/api/v1", tags=["organisations"])


def _orgs(uow: UoWDep, resources: Resources) -> OrgService:
    return OrgService(uow, resources.settings, resources.secret_box)


def _member_out(member: Member) -> MemberOut:
    return MemberOut(
        user_id=member.user.id,
        email=member.user.email,
        name=member.user.name,
        role=member.membership.role,
        joined_at=member.membership.created_at,
    )


@router.post(
    "/orgs",
    status_code=status.HTTP_201_CREATED,
    response_model=MyOrg,
    responses=error_responses(Unauthorized, Forbidden),
)
async def create_org(
    body: OrgCreate, request: Request, user: SignedInUser, uow: UoWDep, resources: ResourcesDep
) -> MyOrg:
    """Create another organisation owned by the signed-in user; select it with `X-Org-Id`."""
    org, membership = await _orgs(uow, resources).create(user.id, body.name, client_ip(request))
    return MyOrg(id=org.id, name=org.name, plan=org.plan, role=membership.role.value)


@router.get("/org", response_model=OrgDetail, responses=error_responses(Unauthorized, Forbidden, NotFound))
async def current_org(principal: Reader, uow: UoWDep, resources: ResourcesDep) -> OrgDetail:
    """The organisation this request acts in (the first one, or the one named by `X-Org-Id`)."""
    org, member_count = await _orgs(uow, resources).current_with_member_count(principal)
    return OrgDetail(
        id=org.id,
        name=org.name,
        plan=org.plan,
        role=principal.org_role or "api_key",
        created_at=org.created_at,
        member_count=member_count,
        language=org.language,
        use_end_user_language=org.use_end_user_language,
        required_sso_provider=org.required_sso_provider,
    )


@router.patch(
    "/org",
    response_model=OrgDetail,
    responses=error_responses(Unauthorized, Forbidden, NotFound, Conflict, InvalidField),
)
async def update_org(
    body: OrgUpdate, request: Request, principal: OrgAdmin, uow: UoWDep, resources: ResourcesDep
) -> OrgDetail:
    """Change the current organisation (owners and admins): its name; the `language` of its bots' notices
    (one Hutch has a catalogue for, else 422; `null`: the deployment's default); and whether notices use the
    end user's own language when their channel tells it (`use_end_user_language`).

    Owners also choose `required_sso_provider` (`google`, `oidc` or `null`): members then sign in through
    that provider only, not with a password; an owner must have linked it first (else 409)."""
    await _orgs(uow, resources).update(principal, body)
    if "required_sso_provider" in body.model_fields_set:
        sso = SsoService(uow, resources.settings, resources.rate_limiter, resources.secret_box, resources.sso)
        await sso.require(principal, body.required_sso_provider, client_ip(request))
    return await current_org(principal, uow, resources)


@router.get("/org/members", response_model=MemberList, responses=error_responses(Unauthorized, Forbidden))
async def list_members(principal: CurrentUser, uow: UoWDep, resources: ResourcesDep) -> MemberList:
    """Members of the current organisation with their roles."""
    return MemberList(items=[_member_out(m) for m in await _orgs(uow, resources).members(principal)])


@router.patch(
    "/org/members/{user_id}",
    response_model=MemberOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound, LastOwner),
)
async def change_member_role(
    user_id: str, body: RoleChange, principal: OrgOwner, uow: UoWDep, resources: ResourcesDep
) -> MemberOut:
    """Give a member another role (owners only). The last owner cannot step down."""
    return _member_out(await _orgs(uow, resources).change_role(principal, user_id, body.role))


@router.delete(
    "/org/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(Unauthorized, Forbidden, NotFound, LastOwner),
)
async def remove_member(
    user_id: str, principal: CurrentUser, uow: UoWDep, resources: ResourcesDep
) -> Response:
    """Remove a member (owners), or leave the organisation (your own id). The last owner cannot go."""
    await _orgs(uow, resources).remove_member(principal, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/org/invitations",
    status_code=status.HTTP_201_CREATED,
    response_model=InvitationOut,
    responses=error_responses(Unauthorized, Forbidden, Conflict),
)
async def invite(
    body: InvitationCreate, principal: OrgAdmin, uow: UoWDep, resources: ResourcesDep
) -> InvitationOut:
    """Invite someone by email (owners and admins; nobody invites above their own role).

    The email carries a single-use link; a newer invitation to the same address replaces the older one.
    """
    invitation = await _orgs(uow, resources).invite(principal, str(body.email).strip().lower(), body.role)
    return InvitationOut.model_validate(invitation, from_attributes=True)


@router.get(
    "/org/invitations", response_model=InvitationList, responses=error_responses(Unauthorized, Forbidden)
)
async def list_invitations(principal: OrgAdmin, uow: UoWDep, resources: ResourcesDep) -> InvitationList:
    """Invitations not yet accepted, revoked or expired."""
    pending = await _orgs(uow, resources).pending_invitations(principal)
    return InvitationList(items=[InvitationOut.model_validate(i, from_attributes=True) for i in pending])


@router.delete(
    "/org/invitations/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def revoke_invitation(
    invitation_id: str, principal: OrgAdmin, uow: UoWDep, resources: ResourcesDep
) -> Response:
    """Withdraw an invitation; its link stops working."""
    await _orgs(uow, resources).revoke_invitation(principal, invitation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/invitations/accept",
    response_model=MyOrg,
    responses=error_responses(Unauthorized, Forbidden, InvalidInvitation),
)
async def accept_invitation(
    body: InvitationAccept, request: Request, user: SignedInUser, uow: UoWDep, resources: ResourcesDep
) -> MyOrg:
    """Join the organisation that invited the signed-in user's email address."""
    org, membership = await _orgs(uow, resources).accept_invitation(user, body.token, client_ip(request))
    return MyOrg(id=org.id, name=org.name, plan=org.plan, role=membership.role.value)
