"""Default texts of the editable portal pages (used until a regulator saves its own, and by the
demo data), and the demo news items."""

from __future__ import annotations

PAGES: dict[str, dict[str, str]] = {
    "open-platform": {
        "title": "开放平台",
        "title_en": "Open platform",
        "body_md": """## 申请条件

1. 在珠海市行政区域内投资建设或运营电动汽车充电设施的企业，具有独立法人资格；
2. 拥有自己的充电运营管理平台，能够按照《电动汽车充换电服务信息交换》（T/CEC 102）与市平台对接；
3. 能够实时、真实、完整地上报充电站、充电设施及其运行状态信息；
4. 具有相应的运营维护能力和客户服务渠道。

## 申请流程

1. **注册**：在本网站点击“注册”，验证企业邮箱并填写企业信息，等待平台审核；
2. **录入档案**：审核通过后登录监管子系统，录入站点档案、检测报告和设施档案并申请核查；
3. **互联互通配置**：填写企业平台的对接信息，获取市平台的对接参数，完成联调；
4. **互联互通申请**：核查通过的设施申请互联互通，通过后在充电地图上展示；
5. **补贴申请**：按照补贴规则在线申请补贴。

## 常见问题

**注册后多久能审核完成？**
一般在 3 个工作日内完成审核，审核结果会通过邮件通知。

**运营商 ID 是什么？**
运营商 ID（OperatorID）为统一社会信用代码的第 9–17 位（组织机构代码），用于互联互通接口。

**忘记密码怎么办？**
在登录页点击“忘记密码”，通过注册手机号接收短信验证码即可重置密码。

## 开放接口

第三方应用可以通过开放接口查询全市已互联互通的充电站，并使用矢量瓦片绘制地图。接口文档见 [开放接口文档](/api/docs)。
""",
        "body_md_en": """## Conditions

1. A legal entity that builds or operates EV charging facilities in Zhuhai;
2. Its own charging management platform, able to connect to the city platform following T/CEC 102;
3. Able to report stations, facilities and their live status truthfully, completely and in real time;
4. Maintenance capacity and a customer service channel.

## Joining process

1. **Register** on this site: confirm the company e-mail, fill in the company details, wait for the review;
2. **Archives**: once approved, log in to the back office and enter the station, report and facility archives;
3. **Interconnection**: enter your platform's docking data, receive ours, run the joint debugging;
4. **Interconnection application**: checked facilities apply for interconnection and then appear on the map;
5. **Subsidies**: apply online according to the published rules.

## FAQ

**How long does the review take?** Usually three working days; the result is sent by e-mail.

**What is the OperatorID?** Characters 9–17 of the unified social credit code (the organisation code).

**Forgot the password?** Use "Forgot password" on the login page: a code is sent by SMS to the registered phone.

## Open API

Third-party apps can search the interconnected stations of the city and draw them from vector tiles: see the [API documentation](/api/docs).
""",
    },
    "about": {
        "title": "关于我们",
        "title_en": "About us",
        "body_md": """## 平台简介

珠海市充电基础设施智慧管理服务平台（珠海市智慧能源大数据平台一期）目标建成珠海市充电设施“统一标准、统一接入、统一监督、统一管理”的公共服务管理统一平台，作为政府、运营商、用户之间的服务桥梁，实现充电设施、服务、管理平台之间的互联互通。

平台提供实时准确的充电设施运营状况、价格执行情况，服务政府主管部门的监督和管理；跟踪财政政策下发情况，便利企业及时享受政策优惠；分享全面的站点信息，服务公众出行。

## 平台历程

- **立项**：珠海市智慧能源大数据平台（一期）项目立项；
- **建设**：完成门户网站、充电地图、监管子系统和互联互通接口建设；
- **上线**：平台上线试运行，首批运营商完成注册和互联互通。

## 重大事件

- 发布充电设施互联互通接入规范；
- 首批充电设施补贴规则发布；
- 开放接口面向第三方应用开放。
""",
        "body_md_en": """## Introduction

The Zhuhai Charging Infrastructure Platform (phase 1 of the Smart Energy Big Data Platform) gives the city one
public platform with common standards, common access, common supervision and common management of charging
facilities, bridging the government, the operators and the public.

## History

- **Project approval** of phase 1;
- **Construction** of the portal, the charging map, the back office and the interconnection interfaces;
- **Launch**: trial operation, the first operators registered and interconnected.

## Major events

- The interconnection access rules were published;
- The first subsidy rules for charging facilities were published;
- The open API was opened to third-party apps.
""",
    },
}

NEWS: list[dict[str, str]] = [
    {"category": "policy", "title": "珠海市发布电动汽车充电基础设施建设运营补贴办法",
     "summary": "明确补贴对象、补贴标准和申请流程，运营商可通过监管子系统在线申请。",
     "body_md": "为加快全市充电基础设施建设，市主管部门发布了充电基础设施建设运营补贴办法。\n\n"
                "## 补贴对象\n\n在本市建成并接入市平台、完成互联互通的公共充电设施。\n\n"
                "## 申请方式\n\n运营商登录监管子系统，在“补贴申请”中选择补贴规则并提交申请。"},
    {"category": "policy", "title": "关于开展充电设施互联互通接入工作的通知",
     "summary": "全市公共充电设施运营商应按 T/CEC 102 规范接入市平台。",
     "body_md": "各充电设施运营企业：\n\n请按照《电动汽车充换电服务信息交换》（T/CEC 102）完成与市平台的互联互通对接，"
                "并及时上报充电站、充电设施及其运行状态信息。"},
    {"category": "industry", "title": "珠海公共充电桩数量稳步增长",
     "summary": "全市已互联互通的公共充电站覆盖香洲、斗门、金湾三区。",
     "body_md": "随着新能源汽车保有量的增长，珠海市公共充电设施建设稳步推进，市平台已接入多家运营商的充电站数据，"
                "市民可以在“充电地图”中查询附近可用的充电桩。"},
    {"category": "industry", "title": "市平台开放接口上线，第三方应用可查询全市充电站",
     "summary": "开放接口提供充电站搜索、多维度筛选和矢量瓦片服务。",
     "body_md": "市平台开放接口正式上线。第三方应用在“开放平台”申请 API 密钥后，即可调用充电站搜索和地图瓦片接口。"},
]
